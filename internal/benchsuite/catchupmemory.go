package benchsuite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-go/strata/persistence"
)

// CatchUpMemoryResult is how much the resident memory of the process grew
// while it read a log of Events notifications from the start.
type CatchUpMemoryResult struct {
	Store  string
	Events int
	// Before is the resident set size when the catch-up began, after a
	// collection; Peak the largest it was until the catch-up ended.
	Before, Peak int64
	// Elapsed is the time the catch-up took.
	Elapsed time.Duration
}

// Growth is Peak - Before.
func (r CatchUpMemoryResult) Growth() int64 { return r.Peak - r.Before }

// CatchUpMemory fills the application log of the store that env selects
// with n events of StateSize bytes, in saves of 1,000, then reads it all
// as a follower catching up does (persistence.ReadNotifications, pages of
// CatchUpPage where the recorder does not stream) and measures the growth
// of the process's resident memory. The peak is the kernel's (VmHWM of
// /proc/self/status, reset by writing 5 to /proc/self/clear_refs just
// before the catch-up), so it sees every page the process touched, the
// Go heap, driver buffers and C allocations alike. Linux only.
func CatchUpMemory(ctx context.Context, store string, env map[string]string, n int) (CatchUpMemoryResult, error) {
	res := CatchUpMemoryResult{Store: store, Events: n}
	f, err := persistence.OpenFactory(ctx, persistence.NewEnv("CatchUp", env))
	if err != nil {
		return res, err
	}
	defer f.Close()
	rec, err := f.ApplicationRecorder(ctx)
	if err != nil {
		return res, err
	}
	for left := n; left > 0; left -= catchUpPerSave {
		if _, err := rec.InsertEvents(ctx, Events(min(left, catchUpPerSave), StateSize)); err != nil {
			return res, fmt.Errorf("fill: %w", err)
		}
	}
	// On PostgreSQL the log shows the fill once the transactions of
	// other programs that began before its last save have ended.
	if va, ok := f.(persistence.VisibilityAwaiter); ok {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := va.AwaitVisibility(wctx)
		cancel()
		if err != nil {
			return res, fmt.Errorf("wait for the fill to show in the log: %w", err)
		}
	}
	if a, ok := rec.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			return res, err
		}
	}
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return res, fmt.Errorf("reset the peak resident size: %w", err)
	}
	if res.Before, err = procStatus("VmRSS"); err != nil {
		return res, err
	}
	start := time.Now()
	read := 0
	for _, err := range persistence.ReadNotifications(ctx, rec, persistence.NotificationQuery{Start: 1}, CatchUpPage) {
		if err != nil {
			return res, err
		}
		read++
	}
	res.Elapsed = time.Since(start)
	if read != n {
		return res, fmt.Errorf("caught up %d notifications of %d", read, n)
	}
	res.Peak, err = procStatus("VmHWM")
	return res, err
}

// procStatus returns a size field of /proc/self/status, in bytes.
func procStatus(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/status %s: %q", field, value)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", field)
}

// PrintCatchUpMemory writes the results as a table.
func PrintCatchUpMemory(w io.Writer, results []CatchUpMemoryResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "store\tnotifications\tRSS before\tRSS peak\tgrowth\tcatch-up time\ttarget")
	for _, r := range results {
		verdict := "ok"
		if r.Growth() >= 64<<20 {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f MiB\t%.1f MiB\t%.1f MiB\t%v\t< 64 MiB %s\n", r.Store, r.Events,
			float64(r.Before)/(1<<20), float64(r.Peak)/(1<<20), float64(r.Growth())/(1<<20), r.Elapsed.Round(time.Millisecond), verdict)
	}
	tw.Flush()
}
