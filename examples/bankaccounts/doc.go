// Package bankaccounts is the reference design's bank accounts example: a
// BankAccount aggregate whose balance is the sum of its transactions, and
// the BankAccounts application that opens accounts, moves money between
// them and closes them.
//
// The BankAccount aggregate is written in the declarative style: its
// commands check the account's rules and trigger events, and one Apply
// method, a type switch, changes the state. Apply never checks rules, so
// that an account recorded under older rules can always be rebuilt.
//
// Money is [decimal.Decimal], never a float, and keeps its scale through
// the event store: a balance of 150.00 is loaded as 150.00, not 150.
//
// Every command that changes an existing account loads it, decides, and
// saves, and is run again by [application.Retry] if another writer saved
// the account first, so that concurrent deposits into one account all
// succeed. A transfer saves both accounts in one atomic save: either both
// transactions are recorded or neither is.
package bankaccounts
