package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// ErrNoCredentials means a console with neither a bearer token nor a user
// and password, and no [WithoutAuth] to say that anyone who reaches it may
// use it.
var ErrNoCredentials = errors.New("the console has no credentials")

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of the options.
const (
	// DefaultPollInterval is how often a live tail looks for new
	// notifications when the store does not prompt it.
	DefaultPollInterval = time.Second
	// DefaultSessionTTL is how long a login lasts.
	DefaultSessionTTL = 12 * time.Hour
	// PageSize is how many notifications a page of the log shows unless
	// its limit says otherwise, and how many events a page of a stream
	// shows.
	PageSize = 50
	// SnapshotsShown is how many of an aggregate's latest snapshots its
	// page shows.
	SnapshotsShown = 10
)

// SessionCookie is the name of the cookie that holds a login.
const SessionCookie = "strata_console_session"

// Option configures a [Console].
type Option func(*config)

type config struct {
	token          string
	tokenSet       bool
	user, password string
	basicSet       bool
	noAuth         bool
	lags           []observe.LagSource
	checker        *health.Checker
	base           string
	readOnly       bool
	poll           time.Duration
	ttl            time.Duration
	secure         bool
	logger         *slog.Logger
}

// WithBearerToken makes the console require the token: in the login form,
// or as "Authorization: Bearer TOKEN" on each request (for scripts). An
// empty token is refused by [New], so that a secret missing from the
// environment locks the console rather than opening it.
func WithBearerToken(token string) Option {
	return func(c *config) { c.token, c.tokenSet = token, true }
}

// WithBasicAuth makes the console accept the user and password: in the
// login form, or as HTTP basic authentication on each request. Both must
// be non-empty.
func WithBasicAuth(user, password string) Option {
	return func(c *config) { c.user, c.password, c.basicSet = user, password, true }
}

// WithoutAuth serves the console to anyone who can reach it. Without it, a
// console with no credentials is refused ([ErrNoCredentials]).
func WithoutAuth() Option { return func(c *config) { c.noAuth = true } }

// WithLags shows the lags of the sources on the readers' page: a system
// runner (its followers), a projection runner (its projection), or any
// observe.LagSource.
func WithLags(sources ...observe.LagSource) Option {
	return func(c *config) { c.lags = append(c.lags, sources...) }
}

// WithHealth shows the checker's report on the health page, as
// health.Checker serves it to probes.
func WithHealth(checker *health.Checker) Option { return func(c *config) { c.checker = checker } }

// WithBasePath serves the console under a path prefix such as
// "/console", for a mux that routes that prefix (and everything under it)
// to the console unchanged.
func WithBasePath(prefix string) Option {
	return func(c *config) { c.base = strings.TrimRight(prefix, "/") }
}

// WithReadOnly removes the one action that writes, "take a snapshot now".
func WithReadOnly() Option { return func(c *config) { c.readOnly = true } }

// WithPollInterval sets how often a live tail looks for new notifications
// when the store does not prompt it (default [DefaultPollInterval]).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithSessionTTL sets how long a login lasts (default [DefaultSessionTTL]).
func WithSessionTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithSecureCookies marks the session cookie Secure even when the request
// did not come over TLS, for a console behind a proxy that terminates TLS.
// Requests that come over TLS get a Secure cookie in any case.
func WithSecureCookies() Option { return func(c *config) { c.secure = true } }

// WithLogger sets the logger of failures that are not the user's fault
// (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// Console is the operator's web console of a set of applications: an
// http.Handler. Make one with [New]. It is safe for concurrent use.
type Console struct {
	cfg      config
	apps     []*app
	byName   map[string]*app
	pages    map[string]*template.Template
	rows     *template.Template
	mux      *http.ServeMux
	handler  http.Handler
	csrfKey  []byte
	sessions sessions

	// closed ends the live tails when the console is closed.
	closed    chan struct{}
	closeOnce sync.Once
}

// app is one application of the console.
type app struct {
	name string
	app  *application.Application

	mu    sync.Mutex
	count counted
}

// counted is how many notifications of an application the console has
// counted, up to which ID, and the last one.
type counted struct {
	upTo  int64
	n     int64
	last  persistence.Notification
	found bool
}

// New returns the console of apps, which must have distinct names. It
// fails with [ErrNoCredentials] unless given a credential
// ([WithBearerToken], [WithBasicAuth]) or [WithoutAuth]. The console reads
// every tenant's data of each application; it closes none of them.
func New(apps []*application.Application, opts ...Option) (*Console, error) {
	cfg := config{poll: DefaultPollInterval, ttl: DefaultSessionTTL, logger: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.tokenSet && cfg.token == "":
		return nil, fmt.Errorf("console: %w: the bearer token is empty", persistence.ErrConfig)
	case cfg.basicSet && (cfg.user == "" || cfg.password == ""):
		return nil, fmt.Errorf("console: %w: basic authentication needs a user and a password", persistence.ErrConfig)
	case cfg.basicSet && strings.Contains(cfg.user, ":"):
		return nil, fmt.Errorf("console: %w: user %q has a colon, which basic authentication cannot carry", persistence.ErrConfig, cfg.user)
	case cfg.noAuth && (cfg.tokenSet || cfg.basicSet):
		return nil, fmt.Errorf("console: %w: WithoutAuth and a credential contradict each other", persistence.ErrConfig)
	case !cfg.noAuth && !cfg.tokenSet && !cfg.basicSet:
		return nil, fmt.Errorf("console: %w: give a bearer token or a user and password, or WithoutAuth", ErrNoCredentials)
	case cfg.poll <= 0:
		return nil, fmt.Errorf("console: %w: poll interval %v is not positive", persistence.ErrConfig, cfg.poll)
	case cfg.ttl <= 0:
		return nil, fmt.Errorf("console: %w: session lifetime %v is not positive", persistence.ErrConfig, cfg.ttl)
	case cfg.base != "" && (!strings.HasPrefix(cfg.base, "/") || strings.ContainsAny(cfg.base, "?#")):
		return nil, fmt.Errorf("console: %w: base path %q is not an absolute path", persistence.ErrConfig, cfg.base)
	case len(apps) == 0:
		return nil, fmt.Errorf("console: %w: no applications", persistence.ErrConfig)
	}
	c := &Console{cfg: cfg, byName: map[string]*app{}, csrfKey: make([]byte, 32), sessions: sessions{m: map[string]time.Time{}},
		closed: make(chan struct{})}
	for _, a := range apps {
		if a == nil {
			return nil, fmt.Errorf("console: %w: a nil application", persistence.ErrConfig)
		}
		if c.byName[a.Name()] != nil {
			return nil, fmt.Errorf("console: %w: two applications are named %s", persistence.ErrConfig, a.Name())
		}
		ap := &app{name: a.Name(), app: a}
		c.apps = append(c.apps, ap)
		c.byName[ap.name] = ap
	}
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, fmt.Errorf("console: make the CSRF key: %w", err)
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// Close ends the live tails, which otherwise last as long as their
// browsers stay, so that a server's Shutdown need not wait for them:
//
//	srv.RegisterOnShutdown(c.Close)
//
// Pages are still served after Close; a tail opened then ends at once
// (browsers retry it). Close closes none of the applications.
func (c *Console) Close() { c.closeOnce.Do(func() { close(c.closed) }) }

func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"path":  url.PathEscape,
		"query": url.QueryEscape,
		"time":  formatTime,
		"age":   formatAge,
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/row.html")
	if err != nil {
		return fmt.Errorf("console: templates: %w", err)
	}
	c.rows = layout
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "templates/")
		if base == "layout.html" || base == "row.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", base, err)
		}
		c.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	// Browsers ask for it whatever the page links to.
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, c.cfg.base+"/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.Handle("POST /logout", c.auth(c.logout))
	m.Handle("GET /{$}", c.auth(c.applications))
	m.Handle("GET /log/{app}", c.auth(c.logPage))
	m.Handle("GET /log/{app}/tail", c.auth(c.tail))
	m.Handle("GET /aggregate/{app}/{id}", c.auth(c.aggregate))
	m.Handle("POST /aggregate/{app}/{id}/snapshot", c.auth(c.snapshot))
	m.Handle("GET /search", c.auth(c.search))
	m.Handle("GET /readers", c.auth(c.readers))
	m.Handle("GET /health", c.auth(c.healthPage))
	m.Handle("/", c.auth(func(w http.ResponseWriter, r *http.Request, who identity) {
		c.fail(w, r, who, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	}))
	c.mux = m
	var h http.Handler = m
	if c.cfg.base != "" {
		h = http.StripPrefix(c.cfg.base, m)
	}
	// Browsers say where a request comes from: a form posted from another
	// site is refused before any handler, the login form included.
	cop := http.NewCrossOriginProtection()
	h = cop.Handler(h)
	c.handler = securityHeaders(h)
}

// securityHeaders keeps pages from being framed, sniffed, cached or made
// to run scripts other than the console's own file.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/static/") && !strings.Contains(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// identity is who made a request: a session, a credential sent with the
// request, or anyone (without authentication). It keys the CSRF token.
type identity struct {
	key     string
	session string // the session ID, for a login
}

func (c *Console) auth(h func(http.ResponseWriter, *http.Request, identity)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := c.authenticate(r)
		if !ok {
			c.showLogin(w, r, http.StatusUnauthorized, "", c.cfg.base+r.URL.RequestURI())
			return
		}
		h(w, r, who)
	})
}

// authenticate reports who made the request, if anyone the console
// accepts.
func (c *Console) authenticate(r *http.Request) (identity, bool) {
	if c.cfg.noAuth {
		return identity{key: "anyone"}, true
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimLeft(cred, " ")
		sum := sha256.Sum256([]byte(h))
		key := "header:" + base64.RawURLEncoding.EncodeToString(sum[:])
		switch {
		case strings.EqualFold(scheme, "Bearer") && c.cfg.tokenSet && equal(cred, c.cfg.token):
			return identity{key: key}, true
		case strings.EqualFold(scheme, "Basic") && c.cfg.basicSet:
			if user, pass, ok := r.BasicAuth(); ok && c.basicOK(user, pass) {
				return identity{key: key}, true
			}
		}
		return identity{}, false
	}
	if ck, err := r.Cookie(SessionCookie); err == nil && c.sessions.valid(ck.Value) {
		return identity{key: "session:" + ck.Value, session: ck.Value}, true
	}
	return identity{}, false
}

func (c *Console) basicOK(user, pass string) bool {
	// Both are compared, so that the time taken does not say which was
	// wrong.
	u, p := equal(user, c.cfg.user), equal(pass, c.cfg.password)
	return u && p
}

// equal compares digests of equal length, so that the time the
// comparison takes says nothing of the secret's length or content.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// csrf returns the CSRF token of an identity: a MAC of it under the
// console's random key, which a page of another site cannot read.
func (c *Console) csrf(who identity) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(who.key))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) csrfOK(r *http.Request, who identity) bool {
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(c.csrf(who)))
}

// sessions are the logins of a console, in memory: a restart logs
// everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]time.Time // ID → expiry
}

func (s *sessions) create(ttl time.Duration) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.m {
		if now.After(exp) {
			delete(s.m, k)
		}
	}
	s.m[id] = now.Add(ttl)
	return id, nil
}

func (s *sessions) valid(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.m[id]
	if ok && time.Now().After(exp) {
		delete(s.m, id)
		return false
	}
	return ok
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// page is what every page's template gets.
type page struct {
	Base     string
	Public   bool // a page for those who have not logged in
	Title    string
	Nav      string
	CSRF     string
	LoggedIn bool // by a session, which can log out
	Content  any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, who identity, title, nav string, content any) {
	t := c.pages[name]
	var b strings.Builder
	p := page{Base: c.cfg.base, Public: name == "login", Title: title, Nav: nav, CSRF: c.csrf(who), LoggedIn: who.session != "", Content: content}
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		c.cfg.logger.ErrorContext(r.Context(), "console: render page", "page", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows an error page with a message for the operator.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, who identity, status int, msg string) {
	c.render(w, r, status, "error", who, http.StatusText(status), "", msg)
}

// login is the login page's content.
type login struct {
	Token, Basic bool
	Next         string
	Problem      string
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, problem, next string) {
	if c.cfg.tokenSet {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Strata console"`)
	}
	c.render(w, r, status, "login", identity{key: "login"}, "Log in", "",
		login{Token: c.cfg.tokenSet, Basic: c.cfg.basicSet, Next: c.local(next), Problem: problem})
}

// local returns next if it is a path of the console, else the console's
// first page, so that the login form redirects nowhere else.
func (c *Console) local(next string) string {
	home := c.cfg.base + "/"
	if next == "" || !strings.HasPrefix(next, home) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return home
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return home
	}
	if strings.HasPrefix(next, c.cfg.base+"/login") || strings.Contains(next, "/tail") {
		return home
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.cfg.noAuth {
		http.Redirect(w, r, c.cfg.base+"/", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "", r.URL.Query().Get("next"))
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.cfg.noAuth {
		http.Redirect(w, r, c.cfg.base+"/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.showLogin(w, r, http.StatusBadRequest, "The form could not be read.", "")
		return
	}
	next := r.PostFormValue("next")
	token, user, pass := r.PostFormValue("token"), r.PostFormValue("user"), r.PostFormValue("password")
	ok := (c.cfg.tokenSet && token != "" && equal(token, c.cfg.token)) ||
		(c.cfg.basicSet && user != "" && c.basicOK(user, pass))
	if !ok {
		c.cfg.logger.WarnContext(r.Context(), "console: failed login", "remote", r.RemoteAddr)
		c.showLogin(w, r, http.StatusUnauthorized, "Wrong credentials: try again.", next)
		return
	}
	id, err := c.sessions.create(c.cfg.ttl)
	if err != nil {
		c.showLogin(w, r, http.StatusInternalServerError, "No session could be made: "+err.Error(), next)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: c.cfg.base + "/", MaxAge: int(c.cfg.ttl.Seconds()),
		HttpOnly: true, Secure: c.cfg.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.local(next), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, who identity) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !c.csrfOK(r, who) {
		c.fail(w, r, who, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
		return
	}
	if who.session != "" {
		c.sessions.remove(who.session)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: c.cfg.base + "/", MaxAge: -1,
		HttpOnly: true, Secure: c.cfg.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, c.cfg.base+"/login", http.StatusSeeOther)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z07:00")
}

func formatAge(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// lags collects the lags of every source.
func (c *Console) lags(ctx context.Context) ([]observe.Lag, []string) {
	var out []observe.Lag
	var problems []string
	for _, src := range c.cfg.lags {
		l, err := src.Lags(ctx)
		out = append(out, l...)
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	return out, problems
}
