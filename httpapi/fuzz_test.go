package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/httpapi"
)

// FuzzHandler sends arbitrary methods, paths, query strings and
// Authorization headers to handlers of a working log, with and without a
// bearer token. Whatever the request, the handler must not panic, must not
// blame the log (no 5xx), and must answer JSON: the items asked for, or an
// error message.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, query, auth string }{
		{"GET", "/sections/1,10", "", "Bearer fuzz-token"},
		{"GET", "/sections/1,1000", "", ""},
		{"GET", "/sections/ 2 , 2 ", "", ""},
		{"GET", "/sections/1,10,3", "", ""},
		{"GET", "/sections/", "", ""},
		{"GET", "/sections/9223372036854775807,9223372036854775807", "", ""},
		{"GET", "/sections/9223372036854774808,9223372036854775807", "", ""},
		{"GET", "/sections/-9223372036854775808,9223372036854775807", "", ""},
		{"GET", "/sections/1,99999999999999999999", "", ""},
		{"GET", "/sections/\xff,\xfe", "", ""},
		{"GET", "/sections/1,10/x", "", ""},
		{"HEAD", "/sections/1,10", "", ""},
		{"GET", "/notifications", "start=1&limit=10", "Bearer fuzz-token"},
		{"GET", "/notifications", "start=0&limit=1000&topics=World.Created,World.SomethingHappened&stop=5", ""},
		{"GET", "/notifications", "start=1&limit=10&topics=World.Created&topics=World", ""},
		{"GET", "/notifications", "start=9223372036854775807&limit=1000", ""},
		{"GET", "/notifications", "start=-9223372036854775808&limit=-9223372036854775808", ""},
		{"GET", "/notifications", "start=1&limit=99999999999999999999", ""},
		{"GET", "/notifications", "start=1&limit=10&stop=-1", ""},
		{"GET", "/notifications", "start=1&limit=10&topics=", ""},
		{"GET", "/notifications", "start=1&limit=10&topics=%ff%fe", ""},
		{"GET", "/notifications", "start=%zz", ""},
		{"GET", "/notifications", "start=1;limit=10", ""},
		{"GET", "/notifications", "start=1&limit=10&start=2", ""},
		{"POST", "/notifications", "start=1&limit=10", ""},
		{"", "/notifications", "start=1&limit=10", ""},
		{"GET", "", "", ""},
		{"GET", "notifications", "", ""},
		{"GET", "//sections/1,10", "", ""},
		{"GET", "/notifications", "", "Bearer"},
		{"GET", "/notifications", "", "bearer  fuzz-token"},
		{"GET", "/notifications", "", "Basic Zm9vOmJhcg=="},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.auth)
	}
	log := newWorlds(f).Log()
	open := httpapi.NewHandler(log, httpapi.WithLogger(discard()))
	guarded := httpapi.NewHandler(log, httpapi.WithLogger(discard()), httpapi.WithBearerToken("fuzz-token"))
	f.Fuzz(func(t *testing.T, method, path, query, auth string) {
		for _, h := range []http.Handler{open, guarded} {
			r := &http.Request{
				Method:     method,
				URL:        &url.URL{Path: path, RawQuery: query},
				Proto:      "HTTP/1.1",
				ProtoMajor: 1,
				ProtoMinor: 1,
				Header:     http.Header{"Authorization": {auth}},
				Host:       "example.com",
				RequestURI: path + "?" + query,
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			checkResponse(t, r, w)
		}
	})
}

func checkResponse(t *testing.T, r *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 || w.Code < 200 {
		t.Fatalf("%s %q ? %q: status %d: %s", r.Method, r.URL.Path, r.URL.RawQuery, w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var body struct {
		Error *string          `json:"error"`
		Items []jsontext.Value `json:"items"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %q ? %q: body %q: %v", r.Method, r.URL.Path, r.URL.RawQuery, w.Body, err)
	}
	switch {
	case w.Code == http.StatusOK:
		if body.Error != nil || body.Items == nil || len(body.Items) > application.MaxLimit {
			t.Fatalf("%s %q ? %q: 200 with body %q", r.Method, r.URL.Path, r.URL.RawQuery, w.Body)
		}
	case body.Error == nil || *body.Error == "":
		t.Fatalf("%s %q ? %q: status %d without an error message: %q", r.Method, r.URL.Path, r.URL.RawQuery, w.Code, w.Body)
	case w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") != "Bearer",
		w.Code == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD":
		t.Fatalf("status %d with headers %v", w.Code, w.Header())
	case w.Code != 400 && w.Code != 401 && w.Code != 404 && w.Code != 405:
		t.Fatalf("unexpected status %d", w.Code)
	}
	if w.Code == http.StatusOK && !strings.HasPrefix(r.URL.Path, "/") {
		t.Fatalf("path %q served", r.URL.Path)
	}
}
