package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
)

// bench --json writes, beside the tables it prints as before, every
// figure the tables summarise: each case's rounds, each system round.
func TestBenchWritesItsRoundsAsJSON(t *testing.T) {
	s := store{name: "bench-json", dir: t.TempDir()}
	file := filepath.Join(t.TempDir(), "bench.json")
	r := s.run(t, "bench", "--filter", "save 100", "--rounds", "2", "--round-time", "20ms", "--system", "20", "--json", file)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "store") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchsuite.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want the one case of save 100: %s", len(rep.Results), b)
	}
	res := rep.Results[0]
	if res.Store != "sqlite" || res.Case != "save 100 events" || len(res.RoundRatios) != 2 ||
		res.RatioMin != slices.Min(res.RoundRatios) || res.RatioMax != slices.Max(res.RoundRatios) || res.StrataPerOp <= 0 || res.BasePerOp <= 0 {
		t.Fatalf("result %+v", res)
	}
	// Two rounds, each with a follower one notification at a time and
	// one in batches.
	var sizes []int
	for _, sys := range rep.System {
		if sys.Store != "sqlite" || sys.Events != 20 || sys.LeaderAlone <= 0 || sys.Follower <= 0 || sys.LagP99 < sys.LagP50 {
			t.Fatalf("system round %+v", sys)
		}
		sizes = append(sizes, sys.BatchSize)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 1, 100, 100}) {
		t.Fatalf("system rounds of batch sizes %v", sizes)
	}
	if !strings.HasPrefix(rep.Machine, "machine: ") {
		t.Fatalf("machine %q", rep.Machine)
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("bench left %s.tmp behind (%v)", file, err)
	}

	r = s.run(t, "bench", "--filter", "save 100", "--rounds", "1", "--round-time", "20ms", "--json", filepath.Join(t.TempDir(), "no such directory", "bench.json"))
	if r.code != 1 || !strings.Contains(r.stderr, "bench --json") || !strings.Contains(r.stderr, "no such directory") {
		t.Fatalf("bench --json into a missing directory: exit %d, stderr %q", r.code, r.stderr)
	}
}
