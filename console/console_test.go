package console_test

import (
	"bufio"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/console"
	"github.com/strata-go/strata/persistence"
)

const token = "a-long-enough-console-token"

// client is a browser-like client of a console: it keeps cookies and
// does not follow redirects, so that tests see them.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	auth string // an Authorization header to send, if any
}

func newClient(t *testing.T, srv *httptest.Server) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: srv.URL, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *client) do(method, path string, form url.Values, headers ...string) (int, http.Header, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	code, _, body := c.do(http.MethodGet, path, nil)
	return code, body
}

// login logs in with the form and checks that it lands on next.
func (c *client) login(next string) {
	c.t.Helper()
	code, h, body := c.do(http.MethodPost, "/login", url.Values{"token": {token}, "next": {next}})
	if code != http.StatusSeeOther || h.Get("Location") != next {
		c.t.Fatalf("login: %d, Location %q\n%s", code, h.Get("Location"), body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

func TestNewRefusesAConsoleWithoutCredentials(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		opts []console.Option
		want error
	}{
		{"no credential at all", nil, console.ErrNoCredentials},
		{"an empty token", []console.Option{console.WithBearerToken("")}, persistence.ErrConfig},
		{"a user without a password", []console.Option{console.WithBasicAuth("ada", "")}, persistence.ErrConfig},
		{"no authentication and a token", []console.Option{console.WithoutAuth(), console.WithBearerToken(token)}, persistence.ErrConfig},
		{"a relative base path", []console.Option{console.WithoutAuth(), console.WithBasePath("console")}, persistence.ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := console.New([]*application.Application{f.worlds}, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := console.New([]*application.Application{f.worlds}, console.WithoutAuth()); err != nil {
		t.Fatalf("WithoutAuth: %v", err)
	}
}

func TestEveryPageNeedsACredential(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.console(t, console.WithBearerToken(token), console.WithBasicAuth("ada", "lovelace")))
	defer srv.Close()
	c := newClient(t, srv)
	pages := []string{"/", "/log/Worlds", "/log/Worlds/tail", "/aggregate/Worlds/" + f.world.String(), "/search?id=" + f.world.String(), "/readers", "/health", "/nowhere"}
	for _, p := range pages {
		code, h, body := c.do(http.MethodGet, p, nil)
		if code != http.StatusUnauthorized || !strings.Contains(body, `id="login"`) || strings.Contains(body, "dinosaurs") || h.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without a credential: %d, WWW-Authenticate %q\n%s", p, code, h.Get("WWW-Authenticate"), body)
		}
	}
	for _, auth := range []string{"Bearer wrong", "Bearer " + token + "x", "Basic " + basic("ada", "wrong"), "Basic " + basic("eve", "lovelace"), "Digest " + token} {
		c.auth = auth
		if code, body := c.get("/"); code != http.StatusUnauthorized || !strings.Contains(body, `id="login"`) {
			t.Errorf("GET / with %q: %d", auth, code)
		}
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "Basic " + basic("ada", "lovelace")} {
		c.auth = auth
		if code, body := c.get("/log/Worlds"); code != http.StatusOK || !strings.Contains(body, "dinosaurs") {
			t.Errorf("GET /log/Worlds with %q: %d\n%s", auth, code, body)
		}
	}
	c.auth = ""
	// A wrong token in the form gets the login page again, with the page
	// asked for kept.
	code, _, body := c.do(http.MethodPost, "/login", url.Values{"token": {"wrong"}, "next": {"/readers"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "Wrong credentials") || !strings.Contains(body, `name="next" value="/readers"`) {
		t.Fatalf("a wrong token: %d\n%s", code, body)
	}
	// The form never sends a browser elsewhere.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "/login"} {
		code, h, _ := c.do(http.MethodPost, "/login", url.Values{"token": {token}, "next": {next}})
		if code != http.StatusSeeOther || h.Get("Location") != "/" {
			t.Errorf("login with next %q: %d to %q", next, code, h.Get("Location"))
		}
	}
	c.login("/readers")
	code, body = c.get("/readers")
	if code != http.StatusOK || !strings.Contains(body, "happenings") {
		t.Fatalf("after login: %d\n%s", code, body)
	}
	// Logging out needs the CSRF token, and ends the session.
	if code, _, _ := c.do(http.MethodPost, "/logout", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token: %d", code)
	}
	code, h, _ := c.do(http.MethodPost, "/logout", url.Values{"csrf": {csrfOf(t, body)}})
	if code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Fatalf("logout: %d to %q", code, h.Get("Location"))
	}
	if code, _ := c.get("/readers"); code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", code)
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestThePagesShowTheStore(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.console(t, console.WithBearerToken(token)))
	defer srv.Close()
	c := newClient(t, srv)
	c.login("/")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/", []string{`<a href="/log/Worlds">Worlds</a>`, `<td class="num events">17</td>`, `<a href="/log/Counters">Counters</a>`, `<td class="num events">0</td>`}},
		{"/log/Worlds?limit=5", []string{`<tr data-id="5"`, "World.SomethingHappened", "order-7", `rel="next" href="/log/Worlds?start=6&limit=5&topics="`}},
		{"/log/Worlds?topics=World.Created", []string{`<tr data-id="1"`, "tenant acme", "?tenant=acme"}},
		{"/aggregate/Worlds/" + f.world.String(), []string{"<dd>World</dd>", "<dd>4</dd>", "dinosaurs", "<span>user</span> ada", "Take a snapshot now", "No snapshots."}},
		{"/aggregate/Worlds/" + f.tenanted.String() + "?tenant=acme", []string{"humans", "<dd>acme</dd>"}},
		{"/readers", []string{"Counters", "happenings v1", "caught up", "17"}},
		{"/health", []string{"Healthy", "follower Counters reading Worlds"}},
	} {
		code, body := c.get(tc.path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", tc.path, code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q:\n%s", tc.path, w, body)
			}
		}
		if strings.Contains(body, "tenant acme") && tc.path == "/log/Worlds?limit=5" {
			t.Errorf("the first five notifications are of the default tenant")
		}
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/log/Nowhere", http.StatusNotFound, "There is no application &#34;Nowhere&#34; here (applications: Worlds, Counters)."},
		{"/log/Worlds?topics=No.Such", http.StatusBadRequest, "No.Such"},
		{"/log/Worlds?limit=1001", http.StatusBadRequest, "limit &#34;1001&#34; is not a whole number from 1 to 1000."},
		{"/aggregate/Worlds/not-a-uuid", http.StatusNotFound, "is not an aggregate ID"},
		{"/aggregate/Worlds/" + f.tenanted.String(), http.StatusNotFound, "in the default tenant"},
		{"/search?id=nope", http.StatusBadRequest, "is not an aggregate ID"},
	} {
		if code, body := c.get(tc.path); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d with %q\n%s", tc.path, code, tc.code, tc.want, body)
		}
	}
	// Search finds an aggregate by ID, in a tenant if asked.
	code, h, _ := c.do(http.MethodGet, "/search?id="+f.world.String(), nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/aggregate/Worlds/"+f.world.String() {
		t.Fatalf("search: %d to %q", code, h.Get("Location"))
	}
	code, h, _ = c.do(http.MethodGet, "/search?tenant=acme&id="+f.tenanted.String(), nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/aggregate/Worlds/"+f.tenanted.String()+"?tenant=acme" {
		t.Fatalf("search in a tenant: %d to %q", code, h.Get("Location"))
	}
	if code, body := c.get("/search?id=" + f.tenanted.String()); code != http.StatusOK || !strings.Contains(body, "No application has an aggregate with this ID in the default tenant.") {
		t.Fatalf("search in the wrong tenant: %d\n%s", code, body)
	}
}

// Events may hold hostile strings: every page shows them as text.
func TestHostileEventStateIsShownAsText(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.console(t, console.WithBearerToken(token)))
	defer srv.Close()
	c := newClient(t, srv)
	c.auth = "Bearer " + token
	// In the JSON of the event, quotes are escaped: look for the markup.
	escaped := html.EscapeString(`<script>document.title=`)
	for _, path := range []string{"/aggregate/Worlds/" + f.hostile.String(), "/log/Worlds?start=15&limit=1"} {
		code, body := c.get(path)
		if code != http.StatusOK || !strings.Contains(body, escaped) {
			t.Fatalf("GET %s: %d; the escaped string is missing:\n%s", path, code, body)
		}
		if !strings.Contains(body, "&lt;img src=x onerror=") || strings.Contains(body, "<script>document") || strings.Contains(body, "<img") {
			t.Fatalf("GET %s has the hostile markup unescaped:\n%s", path, body)
		}
	}
	// The live tail sends rows escaped too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/log/Worlds/tail?after=14", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	var event strings.Builder
	for !strings.HasSuffix(event.String(), "\n\n") || !strings.Contains(event.String(), "id: 15") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("tail: %v after %q", err, event.String())
		}
		event.WriteString(line)
	}
	if !strings.Contains(event.String(), "event: notification\n") || !strings.Contains(event.String(), escaped) || strings.Contains(event.String(), "<script>") {
		t.Fatalf("the tail's row:\n%s", event.String())
	}
}

func TestTheTailSendsWhatIsSavedWhileItFollows(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.console(t, console.WithBearerToken(token), console.WithPollInterval(20*time.Millisecond)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all, err := f.worlds.AllTenants().Select(ctx, 1, application.MaxLimit)
	if err != nil || len(all) != 17 {
		t.Fatal(len(all), err)
	}
	last := all[len(all)-1].ID
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/log/Worlds/tail?topics=World.SomethingHappened", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", "17") // a reconnecting browser's
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": following\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	f.save(t, ctx, f.worlds, nil)                        // a Created event, filtered out
	f.happen(t, ctx, f.world, "written while following") // its notification ID is last+2
	var got strings.Builder
	for !strings.Contains(got.String(), "written while following") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("tail: %v after %q", err, got.String())
		}
		got.WriteString(line)
	}
	if want := "id: " + strconv.FormatInt(last+2, 10) + "\nevent: notification\n"; !strings.HasPrefix(strings.TrimLeft(got.String(), "\n"), want) {
		t.Fatalf("the tail sent\n%q\nwant it to start with %q", got.String(), want)
	}
}

func TestTakingASnapshotNeedsTheCSRFToken(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.console(t, console.WithBearerToken(token)))
	defer srv.Close()
	c := newClient(t, srv)
	page := "/aggregate/Worlds/" + f.world.String()
	c.login(page)
	_, body := c.get(page)
	csrf := csrfOf(t, body)
	action := page + "/snapshot"
	snapshots := func() int {
		snaps, err := f.worlds.Snapshots().Get(context.Background(), f.world, persistence.EventQuery{})
		if err != nil && !errors.Is(err, persistence.ErrNoTable) {
			t.Fatal(err)
		}
		return len(snaps)
	}
	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
	}{
		{"without a token", url.Values{}, nil},
		{"with a wrong token", url.Values{"csrf": {"x" + csrf}}, nil},
		{"with another identity's token", url.Values{"csrf": {csrfOf(t, mustGet(t, srv, page, "Bearer "+token))}}, nil},
		{"from another site", url.Values{"csrf": {csrf}}, []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := c.do(http.MethodPost, action, tc.form, tc.headers...)
			if code != http.StatusForbidden || snapshots() != 0 {
				t.Fatalf("POST %s: %d, %d snapshot(s)\n%s", action, code, snapshots(), body)
			}
		})
	}
	code, h, _ := c.do(http.MethodPost, action, url.Values{"csrf": {csrf}}, "Sec-Fetch-Site", "same-origin")
	if code != http.StatusSeeOther || h.Get("Location") != page+"?snapshot=4#snapshots" || snapshots() != 1 {
		t.Fatalf("POST with the token: %d to %q, %d snapshot(s)", code, h.Get("Location"), snapshots())
	}
	if _, body := c.get(page + "?snapshot=4"); !strings.Contains(body, "Snapshot taken at version 4.") || !strings.Contains(body, `id="snapshot-list"`) || !strings.Contains(body, `&#34;history&#34;: [`) {
		t.Fatalf("the page after the snapshot:\n%s", body)
	}

	// A read-only console offers no action and refuses it.
	ro := httptest.NewServer(f.console(t, console.WithBearerToken(token), console.WithReadOnly()))
	defer ro.Close()
	body = mustGet(t, ro, page, "Bearer "+token)
	if strings.Contains(body, "Take a snapshot now") {
		t.Fatal("a read-only console offers a snapshot")
	}
	rc := newClient(t, ro)
	rc.auth = "Bearer " + token
	if code, _, body := rc.do(http.MethodPost, action, url.Values{}); code != http.StatusForbidden || !strings.Contains(body, "This console is read-only") || snapshots() != 1 {
		t.Fatalf("a read-only console took a snapshot: %d\n%s", code, body)
	}
}

func mustGet(t *testing.T, srv *httptest.Server, path, auth string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

func TestTheConsoleMountsUnderAPrefix(t *testing.T) {
	f := newFixture(t)
	mux := http.NewServeMux()
	mux.Handle("/ops/console/", f.console(t, console.WithBearerToken(token), console.WithBasePath("/ops/console")))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newClient(t, srv)
	code, _, body := c.do(http.MethodGet, "/ops/console/log/Worlds", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, `action="/ops/console/login"`) || !strings.Contains(body, `name="next" value="/ops/console/log/Worlds"`) {
		t.Fatalf("login page under the prefix: %d\n%s", code, body)
	}
	code, h, _ := c.do(http.MethodPost, "/ops/console/login", url.Values{"token": {token}, "next": {"/ops/console/log/Worlds"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/ops/console/log/Worlds" || !strings.Contains(h.Get("Set-Cookie"), "Path=/ops/console/") {
		t.Fatalf("login: %d to %q, cookie %q", code, h.Get("Location"), h.Get("Set-Cookie"))
	}
	code, body = c.get("/ops/console/log/Worlds")
	if code != http.StatusOK || !strings.Contains(body, `href="/ops/console/aggregate/Worlds/`) || !strings.Contains(body, `src="/ops/console/static/console.js"`) {
		t.Fatalf("the log under the prefix: %d\n%s", code, body)
	}
	if code, _ := c.get("/ops/console/static/console.css"); code != http.StatusOK {
		t.Fatalf("static file: %d", code)
	}
}

// Close ends the live tails, so that a server's Shutdown does not wait
// for the browsers that follow.
func TestCloseEndsTheTails(t *testing.T) {
	f := newFixture(t)
	c := f.console(t, console.WithBearerToken(token))
	srv := httptest.NewServer(c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/log/Worlds/tail?after=17", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": following\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	c.Close()
	rest, err := io.ReadAll(r)
	if err != nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("after Close the tail sent %q, %v", rest, err)
	}
	// A tail opened after Close ends at once; pages are still served.
	resp2, err := http.DefaultClient.Do(req.Clone(ctx))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if string(body) != ": following\n\n" {
		t.Fatalf("a tail after Close: %q", body)
	}
	if body := mustGet(t, srv, "/", "Bearer "+token); !strings.Contains(body, "Worlds") {
		t.Fatal("no page after Close")
	}
}
