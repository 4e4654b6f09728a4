package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// event is an event as the pages show it: decoded, or with the problem
// that kept it from being decoded.
type event struct {
	Base         string
	ID           int64 // notification ID, in the log
	App          string
	Tenant       string
	OriginatorID uuid.UUID
	Version      int64
	Time         time.Time
	Topic        string
	Data         string // indented JSON
	CommitID     uuid.UUID
	Headers      []header
	Erased       bool
	Problem      string
	// InStream says the row is in its aggregate's page, which shows
	// neither notification IDs nor the aggregate.
	InStream bool
}

type header struct{ Name, Value string }

// decode decodes a stored event with the mapper of its tenant's view of
// the application, which decrypts with the tenant's data key if there is
// one.
func decode(base string, a *application.Application, id int64, tenant string, s persistence.StoredEvent) event {
	e := event{Base: base, ID: id, App: a.Name(), Tenant: tenant, OriginatorID: s.OriginatorID, Version: s.OriginatorVersion,
		Topic: s.Topic, CommitID: s.CommitID}
	for k, v := range s.Headers {
		e.Headers = append(e.Headers, header{k, v})
	}
	slices.SortFunc(e.Headers, func(a, b header) int { return strings.Compare(a.Name, b.Name) })
	view, err := a.ForTenant(tenant)
	if err != nil {
		e.Problem = err.Error()
		return e
	}
	d, err := view.Mapper().ToEvent(s)
	switch {
	case errors.Is(err, persistence.ErrErased):
		e.Erased = true
		return e
	case err != nil:
		e.Problem = err.Error()
		return e
	}
	e.Time = d.Timestamp
	data, err := view.Mapper().Transcoder().Marshal(d.Data)
	if err != nil {
		e.Problem = "encode as JSON: " + err.Error()
		return e
	}
	e.Data = indent(data)
	return e
}

// indent indents JSON for people; the bytes of strings are kept as they
// are, so that "<" is shown as "<" (the templates escape it).
func indent(data []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return string(data)
	}
	return b.String()
}

func (c *Console) app(w http.ResponseWriter, r *http.Request, who identity) (*app, bool) {
	name := r.PathValue("app")
	a := c.byName[name]
	if a == nil {
		names := make([]string, len(c.apps))
		for i, a := range c.apps {
			names[i] = a.name
		}
		c.fail(w, r, who, http.StatusNotFound, fmt.Sprintf("There is no application %q here (applications: %s).", name, strings.Join(names, ", ")))
		return nil, false
	}
	return a, true
}

// appRow is a line of the applications page.
type appRow struct {
	Name    string
	Events  int64
	Last    *event
	Problem string
}

// counts counts the application's notifications that the console has not
// counted yet, and returns the count and the last notification. Counting
// starts where the last count stopped, so that a page view reads only
// what was recorded since the one before.
func (a *app) counts(ctx context.Context) (counted, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	log := a.app.AllTenants()
	for {
		page, err := log.Select(ctx, a.count.upTo+1, application.MaxLimit)
		if err != nil {
			return a.count, err
		}
		if len(page) > 0 {
			a.count.n += int64(len(page))
			a.count.last, a.count.found = page[len(page)-1], true
			a.count.upTo = a.count.last.ID
		}
		if len(page) < application.MaxLimit {
			return a.count, nil
		}
	}
}

func (c *Console) applications(w http.ResponseWriter, r *http.Request, who identity) {
	var rows []appRow
	for _, a := range c.apps {
		row := appRow{Name: a.name}
		n, err := a.counts(r.Context())
		row.Events = n.n
		if err != nil {
			row.Problem = err.Error()
		}
		if n.found {
			e := decode(c.cfg.base, a.app, n.last.ID, n.last.Tenant, n.last.StoredEvent)
			row.Last = &e
		}
		rows = append(rows, row)
	}
	c.render(w, r, http.StatusOK, "applications", who, "Applications", "applications", rows)
}

// logView is the content of a page of the log.
type logView struct {
	App     string
	Start   int64
	Limit   int
	Topics  string
	Known   []string
	Events  []event
	Next    int64 // the next page's start, 0 if this is the last page
	Latest  int64 // the start of the last page
	Max     int64
	After   int64 // where a live tail starts
	Problem string
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, who identity) {
	a, ok := c.app(w, r, who)
	if !ok {
		return
	}
	q := r.URL.Query()
	v := logView{App: a.name, Start: 1, Limit: PageSize, Topics: strings.TrimSpace(q.Get("topics"))}
	for _, info := range a.app.Types().Types() {
		if !info.IsAggregate() && !strings.HasPrefix(info.Topic(), "strata.") {
			v.Known = append(v.Known, info.Topic())
		}
	}
	slices.Sort(v.Known)
	bad := func(msg string) {
		v.Problem = msg
		c.render(w, r, http.StatusBadRequest, "log", who, "Log of "+a.name, "applications", v)
	}
	if s := q.Get("start"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			bad(fmt.Sprintf("start %q is not a notification ID (a whole number from 1).", s))
			return
		}
		v.Start = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > application.MaxLimit {
			bad(fmt.Sprintf("limit %q is not a whole number from 1 to %d.", s, application.MaxLimit))
			return
		}
		v.Limit = n
	}
	opts := topicOptions(v.Topics)
	log := a.app.AllTenants()
	// The recorders' MaxNotificationID is the default tenant's: the count
	// reads every tenant's notifications to the end.
	n, err := a.counts(r.Context())
	if err != nil {
		c.fail(w, r, who, statusOf(err), "Cannot read the log of "+a.name+": "+err.Error())
		return
	}
	head := n.upTo
	v.Max, v.Latest, v.After = head, max(1, head-int64(v.Limit)+1), v.Start-1
	page, err := log.Select(r.Context(), v.Start, v.Limit, opts...)
	if err != nil {
		if errors.Is(err, application.ErrQuery) {
			bad(err.Error())
			return
		}
		c.fail(w, r, who, statusOf(err), "Cannot read the log of "+a.name+": "+err.Error())
		return
	}
	for _, n := range page {
		v.Events = append(v.Events, decode(c.cfg.base, a.app, n.ID, n.Tenant, n.StoredEvent))
		v.After = n.ID
	}
	if len(page) == v.Limit {
		v.Next = page[len(page)-1].ID + 1
	}
	c.render(w, r, http.StatusOK, "log", who, "Log of "+a.name, "applications", v)
}

// topicOptions returns the select options of a comma-separated list of
// topics.
func topicOptions(list string) []application.SelectOption {
	var topics []string
	for t := range strings.SplitSeq(list, ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	return []application.SelectOption{application.Topics(topics...)}
}

// statusOf is the status of a failure of a store: 503 if it may pass.
func statusOf(err error) int {
	if errors.Is(err, persistence.ErrOperational) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// listener is a store that prompts readers when other processes save, as
// PostgreSQL's LISTEN does.
type listener interface {
	Listen(ctx context.Context) (<-chan struct{}, error)
}

// heartbeat is how often a quiet tail sends a comment, so that proxies and
// browsers keep the connection.
const heartbeat = 15 * time.Second

// tail streams the log's new notifications as server-sent events: each is
// a "notification" event whose data is the row of the log's table, and
// whose ID is the notification ID, so that a reconnecting browser
// (Last-Event-ID) goes on where it was.
func (c *Console) tail(w http.ResponseWriter, r *http.Request, who identity) {
	a, ok := c.app(w, r, who)
	if !ok {
		return
	}
	q := r.URL.Query()
	from := q.Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		from = id
	}
	after, err := strconv.ParseInt(from, 10, 64)
	if from == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		http.Error(w, fmt.Sprintf("after %q is not a notification ID", from), http.StatusBadRequest)
		return
	}
	opts := topicOptions(q.Get("topics"))
	ctx := r.Context()
	var prompts <-chan struct{}
	if l, ok := a.app.Factory().(listener); ok {
		prompts, _ = l.Listen(ctx)
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(s string) bool {
		// A tail outlives the server's write timeout: each write gets its
		// own.
		_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": following\n\n") {
		return
	}
	select {
	case <-c.closed:
		return
	default:
	}
	log := a.app.AllTenants()
	poll := time.NewTicker(c.cfg.poll)
	defer poll.Stop()
	quiet := time.Now()
	for {
		page, err := log.Select(ctx, after+1, application.MaxLimit, opts...)
		if err != nil {
			if ctx.Err() == nil {
				send("event: problem\ndata: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\n\n")
			}
			return
		}
		for _, n := range page {
			var b strings.Builder
			if err := c.rows.ExecuteTemplate(&b, "row", decode(c.cfg.base, a.app, n.ID, n.Tenant, n.StoredEvent)); err != nil {
				c.cfg.logger.ErrorContext(ctx, "console: render row", "error", err)
				return
			}
			var msg strings.Builder
			fmt.Fprintf(&msg, "id: %d\nevent: notification\n", n.ID)
			for line := range strings.SplitSeq(b.String(), "\n") {
				msg.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
			}
			msg.WriteString("\n")
			if !send(msg.String()) {
				return
			}
			after = n.ID
		}
		if len(page) > 0 {
			quiet = time.Now()
		}
		if len(page) == application.MaxLimit {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-c.closed:
			return
		case <-prompts:
		case <-poll.C:
		}
		if time.Since(quiet) > heartbeat {
			if !send(": quiet\n\n") {
				return
			}
			quiet = time.Now()
		}
	}
}

// aggregateView is the content of an aggregate's page.
type aggregateView struct {
	App       string
	Tenant    string
	ID        uuid.UUID
	Type      string
	Version   int64
	After     int64
	Next      int64 // the version the next page starts after, 0 if none
	Events    []event
	Snapshots []snapshot
	// CanSnapshot says whether the page offers "take a snapshot now".
	CanSnapshot bool
	Taken       string
	Problem     string
}

// snapshot is a snapshot as the page shows it.
type snapshot struct {
	Version int64
	Time    time.Time
	Topic   string
	State   string
	Problem string
}

func (c *Console) aggregate(w http.ResponseWriter, r *http.Request, who identity) {
	c.showAggregate(w, r, who, http.StatusOK, "")
}

func (c *Console) showAggregate(w http.ResponseWriter, r *http.Request, who identity, status int, problem string) {
	a, ok := c.app(w, r, who)
	if !ok {
		return
	}
	q := r.URL.Query()
	v := aggregateView{App: a.name, Tenant: q.Get("tenant"), Problem: problem}
	if r.Method == http.MethodPost {
		v.Tenant = r.PostFormValue("tenant")
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		c.fail(w, r, who, http.StatusNotFound, fmt.Sprintf("%q is not an aggregate ID (a UUID).", r.PathValue("id")))
		return
	}
	v.ID = id
	if s := q.Get("after"); s != "" && r.Method == http.MethodGet {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			c.fail(w, r, who, http.StatusBadRequest, fmt.Sprintf("after %q is not a version.", s))
			return
		}
		v.After = n
	}
	if s := q.Get("snapshot"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			v.Taken = fmt.Sprintf("Snapshot taken at version %d.", n)
		}
	}
	view, err := a.app.ForTenant(v.Tenant)
	if err != nil {
		c.fail(w, r, who, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	rec := view.Recorder()
	first, err := rec.SelectEvents(ctx, id, persistence.EventQuery{Limit: 1})
	if err != nil {
		c.fail(w, r, who, statusOf(err), fmt.Sprintf("Cannot read aggregate %s of %s: %v", id, a.name, err))
		return
	}
	if len(first) == 0 {
		c.fail(w, r, who, http.StatusNotFound, fmt.Sprintf("Application %s has no aggregate %s%s.", a.name, id, tenantOf(v.Tenant)))
		return
	}
	if d, err := view.Mapper().ToEvent(first[0]); err == nil {
		if info, ok := view.Types().AggregateCreatedBy(d.Data); ok {
			v.Type = info.Name()
		}
	}
	last, err := rec.SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: 1})
	if err == nil && len(last) > 0 {
		v.Version = last[0].OriginatorVersion
	}
	q2 := persistence.EventQuery{Limit: PageSize}
	if v.After > 0 {
		after := v.After
		q2.Gt = &after
	}
	events, err := rec.SelectEvents(ctx, id, q2)
	if err != nil {
		c.fail(w, r, who, statusOf(err), fmt.Sprintf("Cannot read aggregate %s of %s: %v", id, a.name, err))
		return
	}
	for _, s := range events {
		e := decode(c.cfg.base, a.app, 0, v.Tenant, s)
		e.InStream = true
		v.Events = append(v.Events, e)
	}
	if len(events) == PageSize {
		v.Next = events[len(events)-1].OriginatorVersion
	}
	if snaps := view.Snapshots(); snaps != nil {
		v.CanSnapshot = !c.cfg.readOnly
		stored, err := snaps.Recorder().SelectEvents(ctx, id, persistence.EventQuery{Desc: true, Limit: SnapshotsShown})
		if err != nil && !errors.Is(err, persistence.ErrNoTable) {
			v.Snapshots = append(v.Snapshots, snapshot{Problem: "Cannot read the snapshots: " + err.Error()})
		}
		for _, s := range stored {
			v.Snapshots = append(v.Snapshots, decodeSnapshot(view, s))
		}
	}
	c.render(w, r, status, "aggregate", who, "Aggregate "+id.String(), "", v)
}

func decodeSnapshot(view *application.Application, s persistence.StoredEvent) snapshot {
	out := snapshot{Version: s.OriginatorVersion, Topic: s.Topic}
	snap, err := view.Mapper().ToSnapshot(s)
	if err != nil {
		out.Problem = err.Error()
		return out
	}
	out.Time = snap.Timestamp
	data, err := view.Mapper().Transcoder().Marshal(snap.State)
	if err != nil {
		out.Problem = "encode as JSON: " + err.Error()
		return out
	}
	out.State = indent(data)
	return out
}

func tenantOf(t string) string {
	if t == "" {
		return " in the default tenant"
	}
	return " in tenant " + strconv.Quote(t)
}

// snapshot takes a snapshot of the aggregate now: the console's one
// action that writes, behind a CSRF token.
func (c *Console) snapshot(w http.ResponseWriter, r *http.Request, who identity) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if c.cfg.readOnly {
		c.showAggregate(w, r, who, http.StatusForbidden, "This console is read-only: it takes no snapshots.")
		return
	}
	if !c.csrfOK(r, who) {
		c.showAggregate(w, r, who, http.StatusForbidden, "The form's CSRF token is missing or wrong: nothing was done. Reload the page and try again.")
		return
	}
	a, ok := c.app(w, r, who)
	if !ok {
		return
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		c.fail(w, r, who, http.StatusNotFound, fmt.Sprintf("%q is not an aggregate ID (a UUID).", r.PathValue("id")))
		return
	}
	tenant := r.PostFormValue("tenant")
	view, err := a.app.ForTenant(tenant)
	if err != nil {
		c.fail(w, r, who, http.StatusBadRequest, err.Error())
		return
	}
	if view.Snapshots() == nil {
		c.showAggregate(w, r, who, http.StatusConflict, "Application "+a.name+" keeps no snapshots (see IS_SNAPSHOTTING_ENABLED).")
		return
	}
	snap, err := view.TakeSnapshot(r.Context(), id)
	if err != nil {
		status := statusOf(err)
		if errors.Is(err, application.ErrAggregateNotFound) {
			status = http.StatusNotFound
		}
		c.showAggregate(w, r, who, status, "No snapshot was taken: "+err.Error())
		return
	}
	c.cfg.logger.InfoContext(r.Context(), "console: snapshot taken", "application", a.name, "tenant", tenant, "id", id, "version", snap.OriginatorVersion)
	http.Redirect(w, r, aggregateURL(c.cfg.base, a.name, id, tenant)+"snapshot="+strconv.FormatInt(snap.OriginatorVersion, 10)+"#snapshots", http.StatusSeeOther)
}

// aggregateURL returns the URL of an aggregate's page, ending in "?" or
// "&" for more parameters.
func aggregateURL(base, app string, id uuid.UUID, tenant string) string {
	u := base + "/aggregate/" + url.PathEscape(app) + "/" + id.String() + "?"
	if tenant != "" {
		u += "tenant=" + url.QueryEscape(tenant) + "&"
	}
	return u
}

// searchView is the content of the search page.
type searchView struct {
	ID      string
	Tenant  string
	Found   []found
	Problem string
}

type found struct {
	App, Type string
	Version   int64
	URL       string
}

func (c *Console) search(w http.ResponseWriter, r *http.Request, who identity) {
	q := r.URL.Query()
	v := searchView{ID: strings.TrimSpace(q.Get("id")), Tenant: q.Get("tenant")}
	if v.ID == "" {
		c.render(w, r, http.StatusOK, "search", who, "Search", "search", v)
		return
	}
	id, err := uuid.Parse(v.ID)
	if err != nil {
		v.Problem = fmt.Sprintf("%q is not an aggregate ID (a UUID).", v.ID)
		c.render(w, r, http.StatusBadRequest, "search", who, "Search", "search", v)
		return
	}
	var problems []string
	for _, a := range c.apps {
		view, err := a.app.ForTenant(v.Tenant)
		if err != nil {
			v.Problem = err.Error()
			c.render(w, r, http.StatusBadRequest, "search", who, "Search", "search", v)
			return
		}
		last, err := view.Recorder().SelectEvents(r.Context(), id, persistence.EventQuery{Desc: true, Limit: 1})
		if err != nil {
			problems = append(problems, a.name+": "+err.Error())
			continue
		}
		if len(last) == 0 {
			continue
		}
		f := found{App: a.name, Version: last[0].OriginatorVersion, URL: aggregateURL(c.cfg.base, a.name, id, v.Tenant)}
		if first, err := view.Recorder().SelectEvents(r.Context(), id, persistence.EventQuery{Limit: 1}); err == nil && len(first) == 1 {
			if d, err := view.Mapper().ToEvent(first[0]); err == nil {
				if info, ok := view.Types().AggregateCreatedBy(d.Data); ok {
					f.Type = info.Name()
				}
			}
		}
		v.Found = append(v.Found, f)
	}
	if len(v.Found) == 1 && len(problems) == 0 {
		http.Redirect(w, r, strings.TrimRight(v.Found[0].URL, "?&"), http.StatusSeeOther)
		return
	}
	v.Problem = strings.Join(problems, "; ")
	c.render(w, r, http.StatusOK, "search", who, "Search", "search", v)
}

// readersView is the content of the followers' and projections' page.
type readersView struct {
	Followers   []lag
	Projections []lag
	Sources     int
	Problems    []string
	Measured    time.Time
}

type lag struct {
	observe.Lag
	Status string
	OK     bool
}

func (c *Console) readers(w http.ResponseWriter, r *http.Request, who identity) {
	lags, problems := c.lags(r.Context())
	v := readersView{Sources: len(c.cfg.lags), Problems: problems, Measured: time.Now()}
	for _, l := range lags {
		row := lag{Lag: l, Status: "running", OK: true}
		if l.Stopped != nil {
			row.Status, row.OK = "stopped: "+l.Stopped.Error(), false
		} else if l.Behind == 0 {
			row.Status = "caught up"
		}
		if l.Kind == observe.ProjectionLag {
			v.Projections = append(v.Projections, row)
		} else {
			v.Followers = append(v.Followers, row)
		}
	}
	c.render(w, r, http.StatusOK, "readers", who, "Followers and projections", "readers", v)
}

// healthView is the content of the health page.
type healthView struct {
	Configured bool
	Report     health.Report
	Checked    time.Time
}

func (c *Console) healthPage(w http.ResponseWriter, r *http.Request, who identity) {
	v := healthView{Configured: c.cfg.checker != nil, Checked: time.Now()}
	if c.cfg.checker != nil {
		v.Report = c.cfg.checker.Report(r.Context())
	}
	c.render(w, r, http.StatusOK, "health", who, "Health", "health", v)
}
