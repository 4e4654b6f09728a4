// Package mysql is Strata's MySQL and MariaDB persistence module, built on
// go-sql-driver/mysql and the SQL layer that Strata's relational adapters
// share.
//
// Select it with PERSISTENCE_MODULE=mysql (or mariadb) and configure it
// with:
//
//	MYSQL_DSN               a data source name, instead of the next five
//	                        (user:password@tcp(host:3306)/dbname?param=value)
//	MYSQL_DBNAME            database name (required without MYSQL_DSN)
//	MYSQL_HOST              host (default 127.0.0.1)
//	MYSQL_PORT              port (default 3306)
//	MYSQL_USER              user (default root)
//	MYSQL_PASSWORD          password
//	MYSQL_POOL_SIZE         most connections in the pool (default 10)
//	MYSQL_LOCK_WAIT_TIMEOUT whole seconds a statement waits for a row lock
//	                        (default: the server's innodb_lock_wait_timeout)
//	MYSQL_POLL_INTERVAL     seconds between looks for saves of other
//	                        processes, for Listen (default 0.1)
//	CREATE_TABLE            create the tables (default true)
//	READ_ONLY               create nothing and refuse writes (default false)
//
// Tables are InnoDB, named after the application, and checked when a
// recorder opens them: a table of another layout is refused with an error
// naming the table and the column.
//
// # Notification order
//
// AUTO_INCREMENT values are drawn when rows are inserted, not when
// transactions commit, so a reader that trusted them would miss events.
// Each application has instead a counter row, which a save updates as the
// last statement before its COMMIT, with the statement that inserts its
// events numbered from it; the save's statements and its COMMIT travel as
// one request. The row lock makes the next save read the counter only once
// this one is visible, so notification IDs increase in commit order, and
// the lock is held for the server's work on two statements and the
// commit, not for a round trip. docs/mysql.md gives the proof, the schemes
// measured against it and its limits.
//
// # Failures
//
// Duplicate keys are integrity errors (a conflict); a save that InnoDB
// rolls back as a deadlock's victim is run again, up to
// sqlstore.WriteAttempts times, then fails as operational; a lock wait
// timeout is operational and recorded nothing. A connection that breaks
// after a save's request was sent leaves its outcome unknown: the error
// wraps persistence.ErrUnknownOutcome, and saving again with the same
// commit ID is safe.
//
// # Prompts
//
// MySQL has no LISTEN/NOTIFY. [Factory.Listen] polls the committed value of
// the counter row, one primary-key lookup every MYSQL_POLL_INTERVAL, and
// prompts followers when it moves.
package mysql
