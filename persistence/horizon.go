package persistence

import (
	"context"
	"time"
)

// Horizon is what holds a database's visibility horizon back: the oldest
// transaction still running, which keeps readers of a notification log
// that orders by commit (PostgreSQL's) from seeing what was saved after it
// began, and keeps the database from vacuuming what it could see.
type Horizon struct {
	// Age is how long the holder's transaction has run; 0 if no other
	// transaction holds the horizon back.
	Age time.Duration
	// PID is the process ID of the holder's backend.
	PID int
	// ApplicationName is the application_name the holder connected with.
	ApplicationName string
	// Database is the database the holder is connected to.
	Database string
	// State is the holder's state ("active", "idle in transaction").
	State string
}

// HorizonReader is implemented by factories of stores whose readers a long
// transaction holds back, such as PostgreSQL's. Monitoring finds it by type
// assertion on a factory.
type HorizonReader interface {
	// Horizon returns what holds the visibility horizon back now.
	Horizon(ctx context.Context) (Horizon, error)
}

// VisibilityAwaiter is implemented by factories of stores whose
// notification log shows a commit only once every transaction that began
// before it has ended, such as PostgreSQL's: a program that reads back a
// log it wrote (a copy checking where it stopped) waits with it first.
type VisibilityAwaiter interface {
	// AwaitVisibility waits until every transaction that was running
	// when it was called has ended, in any database of the cluster, so
	// that the log shows everything committed before the call; or until
	// ctx ends, with ctx's error.
	AwaitVisibility(ctx context.Context) error
}
