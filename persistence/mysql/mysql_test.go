package mysql_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-go/strata/internal/mytest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/mysql"
	"github.com/strata-go/strata/persistence/recordertest"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh database, with
// the variables vars ("KEY=value") on top.
func open(t testing.TB, vars ...string) *mysql.Factory {
	t.Helper()
	env := mytest.Env(t)
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := mysql.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// features are what the MySQL module offers beyond the contract.
var features = recordertest.Features{Replace: true, Erase: true, List: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := mysql.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), mytest.Env(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestStress(t *testing.T) {
	r, err := open(t, "MYSQL_POOL_SIZE=16").ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}
