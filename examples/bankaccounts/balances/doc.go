// Package balances is the bank accounts example's account-balances read
// model: one row per account with its owner, balance, overdraft limit and
// whether it is closed, kept up to date from the BankAccounts
// application's events by a [projection.Runner], and the "largest
// accounts" query over it.
//
// The model is written twice, once in each SQL dialect: [SQLite] (a
// projection over *sql.Tx, for package sqliteprojection) and [Postgres]
// (over pgx.Tx, for package pgprojection). Each keeps money exact: a
// NUMERIC column in PostgreSQL, decimal text in SQLite (added up in Go,
// never as a float), with an index on its numeric value for ordering.
//
// Readers query the views the projection stores point at the live
// version ([Largest], [LargestPostgres]); a new version of the model is
// rebuilt beside the live one and switched in without downtime (see
// package projection).
package balances
