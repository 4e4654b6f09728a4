package benchreport

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrLoadAverage is returned by ParseLoadAverage for text that is not
// that of /proc/loadavg.
var ErrLoadAverage = errors.New("not a load average")

// ParseLoadAverage returns the three load averages (over 1, 5 and 15
// minutes) of the text of /proc/loadavg: "4.12 3.80 2.95".
func ParseLoadAverage(text string) (string, error) {
	f := strings.Fields(text)
	if len(f) < 3 {
		return "", fmt.Errorf("%q: %w", text, ErrLoadAverage)
	}
	for _, x := range f[:3] {
		var v float64
		if _, err := fmt.Sscanf(x, "%g", &v); err != nil {
			return "", fmt.Errorf("%q: %w", text, ErrLoadAverage)
		}
	}
	return strings.Join(f[:3], " "), nil
}

// LoadAverage reads the machine's load averages from /proc/loadavg, or
// says why it could not: a figure's report is not lost for want of it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	s, err := ParseLoadAverage(string(b))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return s
}

// LoadLine is the line under a table that gives the machine's load
// averages when its run began and when it ended: the figures of a
// 2-core machine shared with other work are read with it.
func LoadLine(before, after string) string {
	return fmt.Sprintf("Load average (1, 5, 15 minutes) when the run began: %s; when it ended: %s.", before, after)
}

// Command writes a command line as a shell reads it, quoting the
// arguments that need it: strata bench --filter "save 1 event", go test
// -run '^$'.
func Command(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		switch {
		case a != "" && !strings.ContainsAny(a, " \t\n\"'$`\\|&;<>()*?[]#~!{}^"):
			// As it is.
		case !strings.ContainsAny(a, "\"$`\\!"):
			a = `"` + a + `"`
		case !strings.Contains(a, "'"):
			a = "'" + a + "'"
		default:
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// Section returns the body of the section called name of doc, between
// its markers, and whether doc has it.
func Section(doc, name string) (string, bool) {
	begin, end := "<!-- begin bench-report: "+name+" -->", "<!-- end bench-report: "+name+" -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", false
	}
	return strings.TrimPrefix(doc[i+len(begin):j], "\n"), true
}

// TableRows returns the cells of the data rows of the Markdown tables of
// text (header and separator rows left out), trimmed.
func TableRows(text string) [][]string {
	var rows [][]string
	inTable := false
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "|") || !strings.HasSuffix(l, "|") || len(l) < 2 {
			inTable = false
			continue
		}
		cells := strings.Split(l[1:len(l)-1], "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !inTable {
			// The first row of a table is its header.
			inTable = true
			continue
		}
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue
		}
		rows = append(rows, cells)
	}
	return rows
}
