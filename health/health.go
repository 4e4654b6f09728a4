package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// Result is the outcome of one check of one thing.
type Result struct {
	// Check is the kind of check: "store", "lag" or "horizon".
	Check string `json:"check"`
	// Name says what was checked: an application's store, "follower
	// Scribe reading Worlds", "postgres".
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	// Problem says what is wrong, if anything.
	Problem string `json:"problem,omitzero"`
	// Behind and AgeSeconds are a reader's lag (lag checks), or the age of
	// the oldest running transaction (horizon checks).
	Behind     int64   `json:"behind,omitzero"`
	AgeSeconds float64 `json:"age_seconds,omitzero"`
	// The backend that holds the horizon back (horizon checks).
	HolderPID         int    `json:"holder_pid,omitzero"`
	HolderApplication string `json:"holder_application,omitzero"`
	HolderDatabase    string `json:"holder_database,omitzero"`
	HolderState       string `json:"holder_state,omitzero"`
}

// Report is the outcome of every check: healthy if each result is.
type Report struct {
	// Status is "ok" or "unhealthy".
	Status  string   `json:"status"`
	Healthy bool     `json:"healthy"`
	Checks  []Result `json:"checks"`
}

// Problems returns the results that are not healthy.
func (r Report) Problems() []Result {
	var out []Result
	for _, c := range r.Checks {
		if !c.Healthy {
			out = append(out, c)
		}
	}
	return out
}

// JSON returns the report as the handler serves it, indented.
func (r Report) JSON() []byte {
	b, err := json.Marshal(r, jsontext.WithIndent("  "), jsontext.AllowInvalidUTF8(true))
	if err != nil {
		// Every field is a string, number or boolean.
		panic(err)
	}
	return b
}

// A Check checks something and reports one result per thing it checked.
type Check interface {
	Check(ctx context.Context) []Result
}

// CheckFunc makes a function a Check.
type CheckFunc func(ctx context.Context) []Result

// Check calls f.
func (f CheckFunc) Check(ctx context.Context) []Result { return f(ctx) }

// Store checks that a store is reachable: ping, such as a recorder's
// MaxNotificationID, succeeds.
func Store(name string, ping func(ctx context.Context) error) Check {
	return CheckFunc(func(ctx context.Context) []Result {
		r := Result{Check: "store", Name: name, Healthy: true}
		if err := ping(ctx); err != nil {
			r.Healthy, r.Problem = false, "store unreachable: "+err.Error()
		}
		return []Result{r}
	})
}

// Recorder checks that the store of an application's recorder is
// reachable, by reading its last notification ID.
func Recorder(name string, rec persistence.ApplicationRecorder) Check {
	return Store(name, func(ctx context.Context) error {
		_, err := rec.MaxNotificationID(ctx)
		return err
	})
}

// Lag checks each reader of src (the followers of a system runner, a
// projection runner): it is unhealthy if it stopped at a poison
// notification, if it is more than maxBehind notification IDs behind its
// upstream log's head, or if the oldest notification it has still to
// process was recorded more than maxAge ago. A limit of 0 is no limit.
func Lag(src observe.LagSource, maxBehind int64, maxAge time.Duration) Check {
	return CheckFunc(func(ctx context.Context) []Result {
		lags, err := src.Lags(ctx)
		var out []Result
		for _, l := range lags {
			out = append(out, lagResult(l, maxBehind, maxAge))
		}
		if err != nil {
			out = append(out, Result{Check: "lag", Name: "lag", Problem: "cannot measure lag: " + err.Error()})
		}
		return out
	})
}

func lagResult(l observe.Lag, maxBehind int64, maxAge time.Duration) Result {
	name := string(l.Kind) + " " + l.Reader
	if l.Version > 0 {
		name += " version " + strconv.Itoa(l.Version)
	}
	name += " reading " + l.Upstream
	r := Result{Check: "lag", Name: name, Healthy: true, Behind: l.Behind, AgeSeconds: l.Age.Seconds()}
	var poison *system.PoisonError
	switch {
	case errors.As(l.Stopped, &poison):
		r.Problem = fmt.Sprintf("stopped at poison notification %d of %s (topic %s): resume it or park it", poison.NotificationID, poison.Upstream, poison.Topic)
	case l.Stopped != nil:
		r.Problem = "stopped: " + observe.ErrorKind(l.Stopped) + " error"
	case maxBehind > 0 && l.Behind > maxBehind:
		r.Problem = fmt.Sprintf("%d notifications behind (at %d of %d), more than %d", l.Behind, l.Position, l.Head, maxBehind)
	case maxAge > 0 && l.Age > maxAge:
		r.Problem = fmt.Sprintf("the oldest notification still to process was recorded %v ago, more than %v", l.Age.Round(time.Millisecond), maxAge)
	}
	r.Healthy = r.Problem == ""
	return r
}

// Horizon checks that no transaction has held src's visibility horizon
// back for more than maxAge (PostgreSQL's: see persistence.Horizon).
func Horizon(name string, src persistence.HorizonReader, maxAge time.Duration) Check {
	return CheckFunc(func(ctx context.Context) []Result {
		r := Result{Check: "horizon", Name: name, Healthy: true}
		h, err := src.Horizon(ctx)
		if err != nil {
			r.Healthy, r.Problem = false, "cannot read the visibility horizon: "+err.Error()
			return []Result{r}
		}
		r.AgeSeconds = h.Age.Seconds()
		r.HolderPID, r.HolderApplication, r.HolderDatabase, r.HolderState = h.PID, h.ApplicationName, h.Database, h.State
		if maxAge > 0 && h.Age > maxAge {
			r.Healthy = false
			r.Problem = fmt.Sprintf("a transaction of backend %d (application_name %q, database %q, %s) has held the visibility horizon back for %v, more than %v: readers see nothing saved since it began",
				h.PID, h.ApplicationName, h.Database, h.State, h.Age.Round(time.Millisecond), maxAge)
		}
		return []Result{r}
	})
}

// DefaultTimeout bounds each check of a [Checker] unless
// [Checker.SetTimeout] says otherwise.
const DefaultTimeout = 5 * time.Second

// Checker runs checks and serves their report. As an http.Handler it is a
// readiness probe: 200 OK with the report as JSON when every check is
// healthy, 503 Service Unavailable with the same report, which says what
// is wrong, when one is not. [Checker.Live] is the liveness probe. A
// Checker is safe for concurrent use once its checks are added.
type Checker struct {
	checks  []Check
	timeout time.Duration
}

// New returns a checker of checks.
func New(checks ...Check) *Checker {
	return &Checker{checks: checks, timeout: DefaultTimeout}
}

// Add adds checks.
func (c *Checker) Add(checks ...Check) { c.checks = append(c.checks, checks...) }

// SetTimeout sets how long each check may take; one that takes longer is
// unhealthy.
func (c *Checker) SetTimeout(d time.Duration) { c.timeout = d }

// Report runs every check, at the same time, and reports them in the
// order they were added.
func (c *Checker) Report(ctx context.Context) Report {
	results := make([][]Result, len(c.checks))
	var wg sync.WaitGroup
	for i, check := range c.checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			results[i] = check.Check(ctx)
		})
	}
	wg.Wait()
	rep := Report{Status: "ok", Healthy: true, Checks: []Result{}}
	for _, rs := range results {
		for _, r := range rs {
			rep.Checks = append(rep.Checks, r)
			if !r.Healthy {
				rep.Healthy, rep.Status = false, "unhealthy"
			}
		}
	}
	return rep
}

// ServeHTTP serves the report: 200 if healthy, else 503.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, []byte(`{"error":"use GET or HEAD"}`))
		return
	}
	rep := c.Report(r.Context())
	status := http.StatusOK
	if !rep.Healthy {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep.JSON())
}

// Live returns the liveness probe: 200 OK whenever the process answers.
// It runs no check, since restarting a process mends neither a store that
// is down nor a reader that is behind: those make the process not ready,
// not dead.
func (c *Checker) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok","healthy":true,"checks":[]}`))
	})
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
