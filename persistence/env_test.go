package persistence_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/memory"
)

func TestEnvPrefersTheApplicationsOwnVariables(t *testing.T) {
	code := map[string]string{"SQLITE_DBNAME": "code.db", "IS_SNAPSHOTTING_ENABLED": "y"}
	process := map[string]string{"SQLITE_DBNAME": "process.db", "WORLDS_CREATE_TABLE": "n"}
	given := map[string]string{"SQLITE_DBNAME": "given.db"}
	env := persistence.NewEnv("Worlds", code, process, given)
	if got := env.Get("SQLITE_DBNAME"); got != "given.db" {
		t.Fatalf("later layers do not win: %q", got)
	}
	if got := env.Get("IS_SNAPSHOTTING_ENABLED"); got != "y" {
		t.Fatalf("settings in code are lost: %q", got)
	}
	if v, name, _ := env.Lookup("CREATE_TABLE"); v != "n" || name != "WORLDS_CREATE_TABLE" {
		t.Fatalf("prefixed lookup: %q %q", v, name)
	}
	other := persistence.NewEnv("Counters", process)
	if v, _, ok := other.Lookup("CREATE_TABLE"); ok {
		t.Fatalf("another application sees WORLDS_CREATE_TABLE: %q", v)
	}
	if p := persistence.NewEnv("Bank Accounts").Prefix(); p != "BANK_ACCOUNTS_" {
		t.Fatalf("prefix %q", p)
	}
	with := env.With(map[string]string{"WORLDS_SQLITE_DBNAME": "mine.db"})
	if with.Get("SQLITE_DBNAME") != "mine.db" || env.Get("SQLITE_DBNAME") != "given.db" {
		t.Fatal("With changed the original or does not override")
	}
}

func TestEnvParsesValuesAndNamesTheVariableOfABadOne(t *testing.T) {
	for _, s := range []string{"y", "YES", "t", "True", "on", "1"} {
		if b, err := persistence.NewEnv("", map[string]string{"X": s}).Bool("X", false); err != nil || !b {
			t.Fatalf("%q: %v %v", s, b, err)
		}
	}
	for _, s := range []string{"n", "No", "f", "false", "OFF", "0"} {
		if b, err := persistence.NewEnv("", map[string]string{"X": s}).Bool("X", true); err != nil || b {
			t.Fatalf("%q: %v %v", s, b, err)
		}
	}
	env := persistence.NewEnv("App", map[string]string{
		"APP_IS_SNAPSHOTTING_ENABLED": "maybe", "N": "ten", "NEG": "-1", "S": "2.5", "D": "1m30s", "BAD": "soon",
	})
	_, err := env.Bool("IS_SNAPSHOTTING_ENABLED", false)
	if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `APP_IS_SNAPSHOTTING_ENABLED="maybe"`) {
		t.Fatalf("bad truth value: %v", err)
	}
	if b, err := env.Bool("UNSET", true); err != nil || !b {
		t.Fatal("unset does not give the default")
	}
	if _, err := env.Int("N", 0, 0); !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `N="ten"`) {
		t.Fatalf("bad integer: %v", err)
	}
	if _, err := env.Int("NEG", 0, 0); !errors.Is(err, persistence.ErrConfig) {
		t.Fatalf("integer below the minimum: %v", err)
	}
	if d, err := env.Seconds("S", 0); err != nil || d != 2500*time.Millisecond {
		t.Fatalf("seconds: %v %v", d, err)
	}
	if d, err := env.Seconds("D", 0); err != nil || d != 90*time.Second {
		t.Fatalf("duration: %v %v", d, err)
	}
	if _, err := env.Seconds("BAD", 0); !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), "BAD") {
		t.Fatalf("bad seconds: %v", err)
	}
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "-1", "1e300"} {
		e := persistence.NewEnv("", map[string]string{"T": v})
		if d, err := e.Seconds("T", 0); !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), "T=") {
			t.Errorf("seconds %q: %v %v, want an error naming T", v, d, err)
		}
	}
}

func TestFactoryIsChosenByPersistenceModule(t *testing.T) {
	ctx := context.Background()
	for _, vars := range []map[string]string{
		{"PERSISTENCE_MODULE": "memory"},
		{"INFRASTRUCTURE_FACTORY": "eventsourcing.popo:Factory"},
		{"PERSISTENCE_MODULE": "memory", "INFRASTRUCTURE_FACTORY": "popo"},
		{"APP_PERSISTENCE_MODULE": "memory", "PERSISTENCE_MODULE": "nonsense"},
	} {
		f, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", vars))
		if err != nil {
			t.Fatalf("%v: %v", vars, err)
		}
		f.Close()
	}
	_, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", map[string]string{"PERSISTENCE_MODULE": "cassandra"}))
	if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `PERSISTENCE_MODULE="cassandra"`) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("unknown module: %v", err)
	}
	_, err = persistence.OpenFactory(ctx, persistence.NewEnv("App", map[string]string{"INFRASTRUCTURE_FACTORY": "x:Factory"}))
	if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), `INFRASTRUCTURE_FACTORY="x:Factory"`) {
		t.Fatalf("unknown factory: %v", err)
	}
}

func TestMapperFromEnv(t *testing.T) {
	key, _ := persistence.CreateKey(16)
	types := accountTypes(t)
	_, events := newAccount(t)
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"nothing", map[string]string{}, ""},
		{"a key alone means AES", map[string]string{"CIPHER_KEY": key}, ""},
		{"a cipher topic and a key", map[string]string{"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key, "COMPRESSOR_TOPIC": "zlib"}, ""},
		{"a cipher topic without a key", map[string]string{"CIPHER_TOPIC": "aes-gcm"}, `CIPHER_TOPIC="aes-gcm" but CIPHER_KEY is not set`},
		{"an unknown cipher", map[string]string{"CIPHER_TOPIC": "rot13", "CIPHER_KEY": key}, `CIPHER_TOPIC="rot13": unknown cipher`},
		{"a short key", map[string]string{"CIPHER_KEY": "c2hvcnQ="}, "CIPHER_KEY: invalid configuration: AES key is 5 bytes"},
		{"an unknown compressor", map[string]string{"COMPRESSOR_TOPIC": "lz4"}, `COMPRESSOR_TOPIC="lz4": unknown compressor`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := persistence.NewMapperFromEnv(persistence.NewEnv("", tt.vars), types)
			if tt.wantErr != "" {
				if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.ToStored(events[0])
			if err != nil {
				t.Fatal(err)
			}
			if encrypted := !strings.Contains(string(s.State), "Alice"); encrypted != (tt.vars["CIPHER_KEY"] != "") {
				t.Fatalf("encrypted %v with %v", encrypted, tt.vars)
			}
			if _, err := m.ToEvent(s); err != nil {
				t.Fatal(err)
			}
		})
	}
}
