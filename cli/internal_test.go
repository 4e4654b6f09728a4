package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-go/strata/persistence"

	_ "github.com/strata-go/strata/persistence/memory"
	_ "github.com/strata-go/strata/persistence/postgres"
	_ "github.com/strata-go/strata/persistence/sqlite"
)

func TestRenderProgress(t *testing.T) {
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{"User", 0, 5000}, "[          ] 0/5000 User"},
		{Progress{"User", 1234, 5000}, "[==        ] 1234/5000 User"},
		{Progress{"User", 2500, 5000}, "[=====     ] 2500/5000 User"},
		{Progress{"User", 5000, 5000}, "[==========] 5000/5000 User"},
		{Progress{"User", 0, 0}, "[==========] 0/0 User"},
		{Progress{"User", 7, 5}, "[==========] 7/5 User"},
	}
	for _, tt := range tests {
		if got := renderProgress(tt.p, 10); got != tt.want {
			t.Errorf("render %+v: %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestTheProgressBarDrawsAtMostTenTimesASecond(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	b := &progressBar{w: &out, interval: 100 * time.Millisecond, now: func() time.Time { return clock }}
	b.update(Progress{"World", 0, 1000})
	for i := 1; i <= 1000; i++ {
		clock = clock.Add(time.Millisecond) // a snapshot a millisecond
		b.update(Progress{"World", i, 1000})
	}
	// The first state, one every 100 ms, and the last.
	if n := bytes.Count(out.Bytes(), []byte("\r\033[K[")); n != 11 {
		t.Fatalf("drew %d times:\n%q", n, out.String())
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\r\033[K["+"=============================="+"] 1000/1000 World")) {
		t.Fatalf("last drawing: %q", out.String()[out.Len()-60:])
	}
	b.clear()
	if !bytes.HasSuffix(out.Bytes(), []byte("World\r\033[K")) {
		t.Fatal("the bar was not cleared")
	}
}

func TestNoProgressBarUnlessATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := newProgressBar(f); b != nil {
		t.Fatal("a progress bar on a file")
	}
	if b := newProgressBar(&bytes.Buffer{}); b != nil {
		t.Fatal("a progress bar on a buffer")
	}
	var none *progressBar
	none.clear() // a run without a bar clears nothing
}

func TestStoreChosen(t *testing.T) {
	tests := []struct {
		environ []string
		want    bool
	}{
		{nil, false},
		{[]string{"SQLITE_DBNAME=x.db", "PATH=/bin"}, false},
		{[]string{"PERSISTENCE_MODULE="}, false},
		{[]string{"PERSISTENCE_MODULE=postgres"}, true},
		{[]string{"INFRASTRUCTURE_FACTORY=eventsourcing.sqlite:Factory"}, true},
		{[]string{"WORLDS_PERSISTENCE_MODULE=memory"}, true},
		{[]string{"MY_PERSISTENCE_MODULES=x"}, false},
	}
	for _, tt := range tests {
		if got := storeChosen(tt.environ); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.environ, got, tt.want)
		}
	}
}

func TestDescribeStore(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{nil, "memory (gone when the command exits)"},
		{map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": "strata.db"}, "SQLite database strata.db"},
		{map[string]string{"INFRASTRUCTURE_FACTORY": "eventsourcing.sqlite:Factory", "SQLITE_DBNAME": ":memory:"},
			"an in-memory SQLite database (gone when the command exits)"},
		{map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": "postgres://u:secret@db.example:5433/shop?sslmode=disable"},
			"PostgreSQL database shop on db.example:5433, schema public"},
		{map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_URL": "host=db password=secret", "POSTGRES_SCHEMA": "s"},
			"PostgreSQL database of POSTGRES_URL, schema s"},
		{map[string]string{"PERSISTENCE_MODULE": "postgres", "POSTGRES_DBNAME": "shop", "POSTGRES_PORT": "5433", "POSTGRES_PASSWORD": "secret"},
			"PostgreSQL database shop on 127.0.0.1:5433, schema public"},
		{map[string]string{"PERSISTENCE_MODULE": "redis"}, "persistence module redis"},
	}
	for _, tt := range tests {
		if got := describeStore(persistence.NewEnv("Worlds", tt.vars)); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.vars, got, tt.want)
		}
	}
}

func TestEnvHelp(t *testing.T) {
	got := EnvHelp("SOME_VARIABLE", "a description long enough to be wrapped onto a second line of the help text")
	want := "  SOME_VARIABLE             a description long enough to be wrapped onto a\n" +
		"                            second line of the help text\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := EnvHelp("A_VARIABLE_WITH_A_VERY_LONG_NAME", "x"), "  A_VARIABLE_WITH_A_VERY_LONG_NAME\n                            x\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Fatalf("%s is taken for a terminal", os.DevNull)
	}
}
