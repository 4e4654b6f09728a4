package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/persistence"
)

// request sends a request to h and returns the recorded response.
func request(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	maps.Copy(r.Header, header)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errorBody returns the message of a JSON error body, and fails the test
// if the response is not one.
func errorBody(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	msg, ok := body["error"].(string)
	if !ok || len(body) != 1 {
		t.Fatalf("body %q, want {\"error\": message}", w.Body)
	}
	return msg
}

func TestTheWireFormatIsAsDocumented(t *testing.T) {
	h := httpapi.NewHandler(&stubLog{items: fixedNotifications()})
	first := `{"id":1,"originator_id":"0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b","originator_version":1,"topic":"World.Created","state":"AAEC/v8=","commit_id":"00000000-0000-0000-0000-000000000000"}`
	second := `{"id":3,"tenant":"acme","originator_id":"0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b","originator_version":2,"topic":"World.SomethingHappened","state":"eyJ3aGF0IjoiZGlub3NhdXJzIn0=","commit_id":"5f0c2a1b-3c4d-4e5f-8a6b-7c8d9e0f1a2b","headers":{"correlation_id":"order-7"}}`
	tests := []struct {
		name, target, want string
	}{
		{"a full section has the ID of the next", "/sections/1,2", `{"id":"1,3","items":[` + first + `,` + second + `],"next_id":"4,5"}`},
		{"a section that is not full has no next ID", "/sections/2,11", `{"id":"3,3","items":[` + second + `],"next_id":null}`},
		{"an empty section has no ID", "/sections/4,10", `{"id":null,"items":[],"next_id":null}`},
		{"a select lists notifications", "/notifications?start=0&limit=10", `{"items":[` + first + `,` + second + `]}`},
		{"a select stops at its limit", "/notifications?start=1&limit=1", `{"items":[` + first + `]}`},
		{"a select filters by topics", "/notifications?start=1&limit=10&topics=World.SomethingHappened", `{"items":[` + second + `]}`},
		{"a select stops at its stop", "/notifications?start=1&limit=10&stop=2", `{"items":[` + first + `]}`},
		{"a select past the end is empty", "/notifications?start=4&limit=10", `{"items":[]}`},
	}
	empty := httpapi.NewHandler(&stubLog{items: []persistence.Notification{{ID: 1}}})
	tests = append(tests, struct{ name, target, want string }{
		"empty state is an empty string", "/notifications?start=1&limit=1",
		`{"items":[{"id":1,"originator_id":"00000000-0000-0000-0000-000000000000","originator_version":0,"topic":"","state":"","commit_id":"00000000-0000-0000-0000-000000000000"}]}`,
	})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h
			if i == len(tests)-1 {
				h = empty
			}
			w := request(h, http.MethodGet, tt.target, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := strings.TrimSuffix(w.Body.String(), "\n"); got != tt.want {
				t.Fatalf("body\n %s\nwant\n %s", got, tt.want)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
				if got := w.Header().Get(k); got != v {
					t.Fatalf("%s %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestBadRequestsGetAnExplanation(t *testing.T) {
	h := httpapi.NewHandler(newWorlds(t).Log())
	tests := []struct {
		name          string
		method        string
		target        string
		status        int
		message       string
		allowedHeader bool
	}{
		{"a section ID of three numbers is refused", "GET", "/sections/1,10,3", 400, `invalid section ID "1,10,3": want two notification IDs, such as "1,10"`, false},
		{"an empty section ID is not found", "GET", "/sections/", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"a section ID of words is refused", "GET", "/sections/a,b", 400, `invalid section ID "a,b": want two notification IDs, such as "1,10"`, false},
		{"a section ID of one number is refused", "GET", "/sections/5", 400, `invalid section ID "5": want two notification IDs, such as "1,10"`, false},
		{"a section ID with a huge number is refused", "GET", "/sections/1,99999999999999999999", 400, `invalid section ID "1,99999999999999999999": want two notification IDs, such as "1,10"`, false},
		{"a section from ID 0 is refused", "GET", "/sections/0,5", 400, `invalid section ID "0,5": notification IDs start at 1`, false},
		{"a section with negative IDs is refused", "GET", "/sections/-5,-1", 400, `invalid section ID "-5,-1": notification IDs start at 1`, false},
		{"a section that ends before it starts is refused", "GET", "/sections/10,1", 400, `invalid section ID "10,1": the last ID is before the first`, false},
		{"a section with an escaped slash is refused", "GET", "/sections/1%2F10", 400, `invalid section ID "1/10": want two notification IDs, such as "1,10"`, false},
		{"a section with a query is refused", "GET", "/sections/1,10?start=1", 400, `invalid notification query: unknown parameter "start"`, false},
		{"a negative start is refused", "GET", "/notifications?start=-1&limit=10", 400, "invalid notification query: start -1 is negative", false},
		{"a huge start is refused", "GET", "/notifications?start=99999999999999999999&limit=10", 400, `invalid notification query: start "99999999999999999999" is out of range`, false},
		{"a start that is not a number is refused", "GET", "/notifications?start=one&limit=10", 400, `invalid notification query: start "one" is not a whole number`, false},
		{"a missing start is refused", "GET", "/notifications?limit=10", 400, "invalid notification query: missing parameter start", false},
		{"a repeated start is refused", "GET", "/notifications?start=1&start=2&limit=10", 400, "invalid notification query: parameter start is given 2 times", false},
		{"a zero limit is refused", "GET", "/notifications?start=1&limit=0", 400, "invalid notification query: limit 0 is not between 1 and 1000", false},
		{"a negative limit is refused", "GET", "/notifications?start=1&limit=-5", 400, "invalid notification query: limit -5 is not between 1 and 1000", false},
		{"a limit over MaxLimit is refused, not cut down", "GET", "/notifications?start=1&limit=1001", 400, "invalid notification query: limit 1001 is not between 1 and 1000", false},
		{"the largest limit that int64 holds is refused", "GET", "/notifications?start=1&limit=9223372036854775807", 400, "invalid notification query: limit 9223372036854775807 is not between 1 and 1000", false},
		{"a huge limit is refused", "GET", "/notifications?start=1&limit=99999999999999999999", 400, `invalid notification query: limit "99999999999999999999" is out of range`, false},
		{"a fractional limit is refused", "GET", "/notifications?start=1&limit=1.5", 400, `invalid notification query: limit "1.5" is not a whole number`, false},
		{"an empty limit is refused", "GET", "/notifications?start=1&limit=", 400, `invalid notification query: limit "" is not a whole number`, false},
		{"a missing limit is refused", "GET", "/notifications?start=1", 400, "invalid notification query: missing parameter limit", false},
		{"a negative stop is refused", "GET", "/notifications?start=1&limit=10&stop=-1", 400, "invalid notification query: stop -1 is negative", false},
		{"a stop that is not a number is refused", "GET", "/notifications?start=1&limit=10&stop=x", 400, `invalid notification query: stop "x" is not a whole number`, false},
		{"an unknown topic is refused", "GET", "/notifications?start=1&limit=10&topics=NoSuchTopic", 400, `invalid notification query: unknown topic "NoSuchTopic": register its type with the application`, false},
		{"an unknown topic among known ones is refused", "GET", "/notifications?start=1&limit=10&topics=World.Created,Nope", 400, `invalid notification query: unknown topic "Nope": register its type with the application`, false},
		{"an empty topic is refused", "GET", "/notifications?start=1&limit=10&topics=", 400, `invalid notification query: empty topic in ""`, false},
		{"an empty topic in a list is refused", "GET", "/notifications?start=1&limit=10&topics=World.Created,,World.SomethingHappened", 400, `invalid notification query: empty topic in "World.Created,,World.SomethingHappened"`, false},
		{"an unknown parameter is refused", "GET", "/notifications?start=1&limit=10&stp=3", 400, `invalid notification query: unknown parameter "stp"`, false},
		{"a malformed query string is refused", "GET", "/notifications?start=%zz&limit=10", 400, "malformed query string", false},
		{"the root is not found", "GET", "/", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"sections without an ID are not found", "GET", "/sections", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"a path below a section is not found", "GET", "/sections/1,10/items", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"a path below notifications is not found", "GET", "/notifications/1", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"an unknown path with a wrong method is not found", "POST", "/admin", 404, "not found: the notification log has /sections/{id} and /notifications", false},
		{"POST to a section is not allowed", "POST", "/sections/1,10", 405, `method "POST" is not allowed: use GET or HEAD`, true},
		{"DELETE of notifications is not allowed", "DELETE", "/notifications?start=1&limit=10", 405, `method "DELETE" is not allowed: use GET or HEAD`, true},
		{"OPTIONS is not allowed", "OPTIONS", "/notifications", 405, `method "OPTIONS" is not allowed: use GET or HEAD`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := request(h, tt.method, tt.target, nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := errorBody(t, w); got != tt.message {
				t.Fatalf("error %q, want %q", got, tt.message)
			}
			if allow := w.Header().Get("Allow"); (allow == "GET, HEAD") != tt.allowedHeader {
				t.Fatalf("Allow %q", allow)
			}
		})
	}
}

func TestHEADIsAGETWithoutABody(t *testing.T) {
	srv := serve(t, newWorlds(t).Log())
	for _, path := range []string{"/sections/1,10", "/notifications?start=1&limit=5"} {
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength <= 0 {
			t.Fatalf("HEAD %s: %s, %d bytes, Content-Type %q, Content-Length %d", path, resp.Status, len(body), resp.Header.Get("Content-Type"), resp.ContentLength)
		}
	}
}

func TestABearerTokenGuardsTheLog(t *testing.T) {
	log := &stubLog{items: fixedNotifications()}
	h := httpapi.NewHandler(log, httpapi.WithBearerToken("s3cret-token"))
	tests := []struct {
		name          string
		authorization []string
		target        string
		status        int
	}{
		{"a request without a token is refused", nil, "/sections/1,10", 401},
		{"a wrong token is refused", []string{"Bearer wrong-token!"}, "/sections/1,10", 401},
		{"a prefix of the token is refused", []string{"Bearer s3cret"}, "/sections/1,10", 401},
		{"the token with more after it is refused", []string{"Bearer s3cret-token2"}, "/sections/1,10", 401},
		{"an empty token is refused", []string{"Bearer "}, "/sections/1,10", 401},
		{"the scheme alone is refused", []string{"Bearer"}, "/sections/1,10", 401},
		{"the token without the scheme is refused", []string{"s3cret-token"}, "/sections/1,10", 401},
		{"the token in basic authentication is refused", []string{"Basic s3cret-token"}, "/sections/1,10", 401},
		{"unknown paths are refused before they are looked up", nil, "/admin", 401},
		{"bad queries are refused before they are checked", nil, "/notifications?start=-1", 401},
		{"the right token is accepted", []string{"Bearer s3cret-token"}, "/sections/1,10", 200},
		{"the scheme is case-insensitive", []string{"bearer s3cret-token"}, "/notifications?start=1&limit=10", 200},
		{"the first of two headers counts", []string{"Bearer s3cret-token", "Bearer wrong"}, "/sections/1,10", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := log.calls.Load()
			w := request(h, http.MethodGet, tt.target, http.Header{"Authorization": tt.authorization})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			reads := log.calls.Load() - before
			if tt.status != 401 {
				if reads != 1 || !strings.Contains(w.Body.String(), `"items":[{`) {
					t.Fatalf("%d reads, body %s", reads, w.Body)
				}
				return
			}
			if reads != 0 {
				t.Fatalf("a refused request read the log %d times", reads)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != "Bearer" {
				t.Fatalf("WWW-Authenticate %q", got)
			}
			if msg := errorBody(t, w); msg != "missing or wrong bearer token" {
				t.Fatalf("error %q", msg)
			}
		})
	}
}

func TestAnEmptyBearerTokenLocksTheLog(t *testing.T) {
	log := &stubLog{items: fixedNotifications()}
	h := httpapi.NewHandler(log, httpapi.WithBearerToken(""))
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer  "} {
		if w := request(h, http.MethodGet, "/sections/1,10", http.Header{"Authorization": {auth}}); w.Code != 401 {
			t.Fatalf("Authorization %q: status %d", auth, w.Code)
		}
	}
	if n := log.calls.Load(); n != 0 {
		t.Fatalf("%d reads", n)
	}
}

func TestFailuresOfTheLogAreLoggedNotExplained(t *testing.T) {
	internal := "dial tcp 10.1.2.3:5432: password authentication failed for user strata"
	tests := []struct {
		name    string
		err     error
		status  int
		message string
	}{
		{"an operational error is 503", &persistence.Error{Op: "select notifications", Kind: persistence.ErrOperational, Err: errors.New(internal)}, 503, "notification log unavailable, try again later"},
		{"a timeout is 503", fmt.Errorf("select notifications (%s): %w", internal, context.DeadlineExceeded), 503, "notification log unavailable, try again later"},
		{"corrupt data is 500", &persistence.Error{Op: "select notifications", Kind: persistence.ErrCorrupt, Err: errors.New(internal)}, 500, "internal error"},
		{"an unclassified error is 500", errors.New(internal), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			h := httpapi.NewHandler(&stubLog{err: tt.err}, httpapi.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
			for _, target := range []string{"/sections/1,10", "/notifications?start=1&limit=10"} {
				logged.Reset()
				w := request(h, http.MethodGet, target, nil)
				if w.Code != tt.status {
					t.Fatalf("%s: status %d, want %d", target, w.Code, tt.status)
				}
				if msg := errorBody(t, w); msg != tt.message {
					t.Fatalf("%s: error %q, want %q", target, msg, tt.message)
				}
				if !strings.Contains(logged.String(), internal) || !strings.Contains(logged.String(), "level=ERROR") {
					t.Fatalf("%s: logged %q", target, logged.String())
				}
			}
		})
	}
}

func TestTheHandlerCanBeMountedUnderAPrefix(t *testing.T) {
	app := newWorlds(t)
	mux := http.NewServeMux()
	mux.Handle("/worlds/", http.StripPrefix("/worlds", httpapi.NewHandler(app.Log())))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	want, err := app.Log().Select(context.Background(), 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{srv.URL + "/worlds", srv.URL + "/worlds/"} {
		c := newClient(t, base)
		s, err := c.Section(context.Background(), "1,10")
		if err != nil {
			t.Fatalf("base %s: %v", base, err)
		}
		sameNotifications(t, s.Items, want)
		got, err := c.Select(context.Background(), 1, 10)
		if err != nil {
			t.Fatalf("base %s: %v", base, err)
		}
		sameNotifications(t, got, want)
	}
}
