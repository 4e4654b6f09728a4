package counters_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-go/strata/internal/benchsuite"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/pgtest"
	"github.com/strata-go/strata/system"
)

// systemEvents is how many events each phase of the system benchmark
// saves.
const systemEvents = 2000

// BenchmarkSystemThroughput measures the concurrent runner with Counters
// following Worlds (see benchsuite.SystemThroughput), on a fresh store per
// run; one run takes seconds, so run it with -benchtime=1x:
//
//	go test -run '^$' -bench SystemThroughput -benchtime 1x ./examples/counters/
func BenchmarkSystemThroughput(b *testing.B) {
	childtest.SkipInChild(b)
	stores := []struct {
		name string
		env  func(b *testing.B, run int) map[string]string
	}{
		{"sqlite", func(b *testing.B, _ int) map[string]string {
			return map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(b.TempDir(), "system.db")}
		}},
		{"postgres", func(b *testing.B, _ int) map[string]string { return pgtest.Env(b) }},
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) {
			var results []benchsuite.SystemResult
			for i := range b.N {
				b.StopTimer()
				env := s.env(b, i)
				b.StartTimer()
				r, err := benchsuite.SystemThroughput(context.Background(), s.name, env, systemEvents, system.DefaultBatchSize)
				if err != nil {
					b.Fatal(err)
				}
				results = append(results, r)
			}
			last := results[len(results)-1]
			b.ReportMetric(last.Follower, "follower-events/s")
			b.ReportMetric(last.LeaderAlone, "leader-alone-events/s")
			b.ReportMetric(last.Leader, "leader-events/s")
			b.ReportMetric(last.CatchUp, "catchup-events/s")
			b.ReportMetric(float64(last.LagP50.Microseconds())/1000, "lag-p50-ms")
			b.ReportMetric(float64(last.LagP99.Microseconds())/1000, "lag-p99-ms")
			b.ReportMetric(last.Ratio, "x-leader-alone")
			if testing.Verbose() {
				benchsuite.PrintSystem(os.Stdout, results)
			}
		})
	}
}
