// Package storetest runs tests of applications against every datastore
// Strata supports on this machine, each test with a fresh, empty store.
package storetest

import (
	"testing"
)

// Store is a datastore that tests can run against.
type Store struct {
	// Name is the persistence module's name.
	Name string
	// Env returns the environment variables of a fresh, empty store for
	// one test; the store is removed when the test ends.
	Env func(t testing.TB) map[string]string
}

var stores = []Store{
	{Name: "memory", Env: func(testing.TB) map[string]string { return map[string]string{"PERSISTENCE_MODULE": "memory"} }},
}

// Register adds a store. Adapter test helpers call it from init.
func Register(s Store) { stores = append(stores, s) }

// Stores returns the stores tests run against.
func Stores() []Store { return stores }

// Run runs test once per store, as a subtest named after the store, with
// the environment of a fresh store.
func Run(t *testing.T, test func(t *testing.T, env map[string]string)) {
	t.Helper()
	for _, s := range stores {
		t.Run(s.Name, func(t *testing.T) { test(t, s.Env(t)) })
	}
}
