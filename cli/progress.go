package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, where a progress bar redrawn
// with carriage returns makes sense. A character device that is not a
// terminal, such as /dev/null, is not one.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws the progress of a run of snapshots on one line of a
// terminal, at most every interval, and always the first and last states.
type progressBar struct {
	w        io.Writer
	interval time.Duration
	now      func() time.Time
	last     time.Time
	drawn    bool
}

// barWidth is the number of cells of the bar.
const barWidth = 30

// newProgressBar returns a bar that draws on w, or nil if w is not a
// terminal: piped output gets no progress.
func newProgressBar(w io.Writer) *progressBar {
	if !isTerminal(w) {
		return nil
	}
	return &progressBar{w: w, interval: 100 * time.Millisecond, now: time.Now}
}

// update draws p, unless the last drawing is too recent.
func (b *progressBar) update(p Progress) {
	t := b.now()
	if p.Done != 0 && p.Done < p.Total && t.Sub(b.last) < b.interval {
		return
	}
	b.last = t
	b.drawn = true
	fmt.Fprint(b.w, "\r\033[K"+renderProgress(p, barWidth))
}

// clear erases the bar, so that what follows starts on a clean line.
func (b *progressBar) clear() {
	if b != nil && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// renderProgress returns "[=====     ] 1234/5000 User".
func renderProgress(p Progress, width int) string {
	filled := width
	if p.Total > 0 {
		filled = min(width*p.Done/p.Total, width)
	}
	return fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.Done, p.Total, p.Aggregate)
}
