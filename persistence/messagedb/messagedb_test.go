package messagedb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-go/strata/internal/mdbtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/messagedb"
	"github.com/strata-go/strata/persistence/recordertest"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh Message DB.
func open(t testing.TB, vars ...string) *messagedb.Factory {
	t.Helper()
	return openIn(t, mdbtest.Env(t), vars...)
}

// openIn returns the factory of a new application in the store of env.
func openIn(t testing.TB, env map[string]string, vars ...string) *messagedb.Factory {
	t.Helper()
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := messagedb.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// features are what the Message DB module offers beyond the contract;
// docs/messagedb.md says why it offers no more.
var features = recordertest.Features{Replace: true, List: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := messagedb.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), mdbtest.Env(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestStress(t *testing.T) {
	r, err := open(t, "MESSAGEDB_POOL_SIZE=16").ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

func TestConfigurationErrorsNameTheVariable(t *testing.T) {
	for vars, want := range map[string]string{
		"":                                       "MESSAGEDB_URL is not set",
		"MESSAGEDB_URL=x MESSAGEDB_CATEGORY=a-b": `category "a-b" contains '-'`,
		"MESSAGEDB_URL=x MESSAGEDB_POOL_SIZE=0":  `MESSAGEDB_POOL_SIZE="0"`,
		"MESSAGEDB_URL=x MESSAGEDB_INITIAL_VERSION=-1":                                      `MESSAGEDB_INITIAL_VERSION="-1"`,
		"MESSAGEDB_URL=x MESSAGEDB_TYPE_NAMES=a":                                            "MESSAGEDB_TYPE_NAMES",
		"MESSAGEDB_URL=x MESSAGEDB_TYPE_NAMES=a=T,b=T":                                      `the same message type "T"`,
		"MESSAGEDB_URL=x MESSAGEDB_CONSUMER_GROUP_MEMBER=1":                                 "MESSAGEDB_CONSUMER_GROUP_SIZE is not",
		"MESSAGEDB_URL=x MESSAGEDB_CONSUMER_GROUP_MEMBER=3 MESSAGEDB_CONSUMER_GROUP_SIZE=3": "MESSAGEDB_CONSUMER_GROUP_MEMBER=3",
		"MESSAGEDB_URL=x MESSAGEDB_SCHEMA=Drop;Table":                                       `MESSAGEDB_SCHEMA "Drop;Table"`,
	} {
		env := map[string]string{}
		for _, kv := range strings.Fields(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_, err := messagedb.OpenEnv(context.Background(), persistence.NewEnv("App", env))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an ErrConfig saying %q", vars, err, want)
		}
	}
}
