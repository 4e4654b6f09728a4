package mongodb_test

import (
	"context"
	"testing"

	"github.com/strata-go/strata/internal/mongotest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mongodb"
	"github.com/strata-go/strata/persistence/recordertest"
)

// features are what the adapter offers, on MongoDB and FerretDB alike: no
// part of it needs what only MongoDB has (see docs/mongodb.md).
var features = recordertest.Features{Replace: true, Erase: true, List: true}

func open(t testing.TB, env map[string]string) *mongodb.Factory {
	t.Helper()
	f, err := mongodb.OpenEnv(context.Background(), persistence.NewEnv("Strata Test", mongotest.Env(t), env))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFactory(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory { return open(t, nil) })
}

func TestStress(t *testing.T) {
	f := open(t, nil)
	t.Cleanup(func() { f.Close() })
	r, err := f.ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 50})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}
