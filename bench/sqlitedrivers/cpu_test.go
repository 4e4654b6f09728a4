package sqlitedrivers

import (
	"syscall"
	"testing"
)

func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuMeter starts measuring process CPU time (user+sys, all threads); the
// returned func reports it per op as "cpu-ns/op". Under a contended machine
// this is far more stable than wall time for CPU-bound work.
func cpuMeter(b *testing.B) func() {
	start := cpuNow()
	return func() {
		b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
	}
}
