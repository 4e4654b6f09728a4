package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/persistence"
)

func TestTheClientReadsWhatTheLocalLogHas(t *testing.T) {
	ctx := context.Background()
	app := newWorlds(t)
	local := app.Log()
	remote := newClient(t, serve(t, local).URL)

	t.Run("sections", func(t *testing.T) {
		tests := []struct{ section, id, next string }{
			{"1,10", "1,10", "11,20"},
			{"1,3", "1,3", "4,6"},
			{"4,6", "4,6", "7,9"},
			{"9,12", "9,12", "13,16"},
			{"10,20", "10,12", ""},
			{"13,20", "", ""},
			{" 2 , 2 ", "2,2", "3,3"},
			{"1,1000", "1,12", ""},
			{"9223372036854775000,9223372036854775807", "", ""},
		}
		for _, tt := range tests {
			want, err := local.Section(ctx, tt.section)
			if err != nil {
				t.Fatal(err)
			}
			got, err := remote.Section(ctx, tt.section)
			if err != nil {
				t.Fatalf("section %q: %v", tt.section, err)
			}
			if got.ID != tt.id || got.NextID != tt.next || want.ID != tt.id || want.NextID != tt.next {
				t.Fatalf("section %q: remote %q next %q, local %q next %q, want %q next %q", tt.section, got.ID, got.NextID, want.ID, want.NextID, tt.id, tt.next)
			}
			if got.Items == nil {
				t.Fatalf("section %q: nil items", tt.section)
			}
			sameNotifications(t, got.Items, want.Items)
		}
	})

	t.Run("following next IDs reads the whole log", func(t *testing.T) {
		var all []persistence.Notification
		for id := "1,5"; id != ""; {
			s, err := remote.Section(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, s.Items...)
			id = s.NextID
		}
		want, _ := local.Select(ctx, 1, application.MaxLimit)
		sameNotifications(t, all, want)
	})

	t.Run("selects", func(t *testing.T) {
		tests := []struct {
			name  string
			start int64
			limit int
			opts  []application.SelectOption
			want  []int64
		}{
			{"from the start", 1, 10, nil, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"from 0, as from 1", 0, 2, nil, []int64{1, 2}},
			{"up to the end", 10, 10, nil, []int64{10, 11, 12}},
			{"past the end", 13, 10, nil, []int64{}},
			{"the largest limit", 1, application.MaxLimit, nil, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
			{"up to a stop", 3, 10, []application.SelectOption{application.Stop(6)}, []int64{3, 4, 5, 6}},
			{"with stop 0, as without a stop", 11, 10, []application.SelectOption{application.Stop(0)}, []int64{11, 12}},
			{"of a topic", 1, 10, []application.SelectOption{application.Topics("World.Created")}, []int64{1, 5, 9}},
			{"of an aggregate type's topic", 1, 10, []application.SelectOption{application.Topics("World")}, []int64{}},
			{"of two topics", 4, 3, []application.SelectOption{application.Topics("World.Created", "World.SomethingHappened")}, []int64{4, 5, 6}},
			{"of topics given twice", 1, 10, []application.SelectOption{application.Topics("World.Created"), application.Topics("World.Created")}, []int64{1, 5, 9}},
			{"of a topic up to a stop", 2, 10, []application.SelectOption{application.Topics("World.Created"), application.Stop(8)}, []int64{5}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want, err := local.Select(ctx, tt.start, tt.limit, tt.opts...)
				if err != nil {
					t.Fatal(err)
				}
				got, err := remote.Select(ctx, tt.start, tt.limit, tt.opts...)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := ids(want), tt.want; !equalInts(g, w) {
					t.Fatalf("local log selected %v, want %v", g, w)
				}
				sameNotifications(t, got, want)
			})
		}
	})
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncryptedStateStaysEncryptedEndToEnd(t *testing.T) {
	ctx := context.Background()
	key, err := persistence.CreateKey(32)
	if err != nil {
		t.Fatal(err)
	}
	app := newWorlds(t, application.WithEnv(map[string]string{"CIPHER_KEY": key}))
	remote := newClient(t, serve(t, app.Log()).URL)

	want, err := app.Log().Select(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Select(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameNotifications(t, got, want)
	section, err := remote.Section(ctx, "1,100")
	if err != nil {
		t.Fatal(err)
	}
	sameNotifications(t, section.Items, want)

	for _, n := range got {
		if bytes.Contains(n.State, []byte("dinosaurs")) || bytes.Contains(n.State, []byte("timestamp")) {
			t.Fatalf("notification %d has plain state %q", n.ID, n.State)
		}
	}
	e, err := app.Mapper().ToEvent(got[1].StoredEvent)
	if err != nil {
		t.Fatal(err)
	}
	if data, ok := e.Data.(worlds.SomethingHappened); !ok || data.What != "jurassic dinosaurs" || e.OriginatorID != got[1].OriginatorID || e.OriginatorVersion != 2 {
		t.Fatalf("decoded %+v", e)
	}

	// Without the key, the bytes are useless, as they are in the datastore.
	plain := newWorlds(t)
	if _, err := plain.Mapper().ToEvent(got[1].StoredEvent); !errors.Is(err, persistence.ErrData) {
		t.Fatalf("decoded without the key: %v", err)
	}
}

func TestTheClientChecksArgumentsBeforeSending(t *testing.T) {
	ctx := context.Background()
	var requests atomic.Int64
	srv := httptest.NewServer(countRequests(httpapi.NewHandler(newWorlds(t).Log()), &requests))
	defer srv.Close()
	c := newClient(t, srv.URL)
	for _, id := range []string{"", "a,b", "10,1", "1", "1,", ",5", "0,5", "-1,5", "1,10,3", "1;10", "1,99999999999999999999"} {
		if _, err := c.Section(ctx, id); !errors.Is(err, application.ErrSectionID) {
			t.Fatalf("section %q: got %v, want an error wrapping ErrSectionID", id, err)
		}
	}
	for _, q := range []struct {
		start int64
		limit int
		opts  []application.SelectOption
	}{
		{-1, 10, nil},
		{1, 0, nil},
		{1, -5, nil},
		{1, application.MaxLimit + 1, nil},
		{1, 10, []application.SelectOption{application.Topics("")}},
		{1, 10, []application.SelectOption{application.Topics("World.Created,World.SomethingHappened")}},
	} {
		if _, err := c.Select(ctx, q.start, q.limit, q.opts...); !errors.Is(err, application.ErrQuery) {
			t.Fatalf("select %d %d: got %v, want an error wrapping ErrQuery", q.start, q.limit, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests were sent", n)
	}
}

func TestTheClientMapsResponsesToErrors(t *testing.T) {
	ctx := context.Background()
	app := newWorlds(t)

	t.Run("an unknown topic is a query error", func(t *testing.T) {
		c := newClient(t, serve(t, app.Log()).URL)
		_, err := c.Select(ctx, 1, 10, application.Topics("NoSuchTopic"))
		var se *httpapi.StatusError
		if !errors.Is(err, application.ErrQuery) || !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.Message, `unknown topic "NoSuchTopic"`) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a 400 to a section is a section ID error", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"invalid section ID \"1,10\": not here"}`, http.StatusBadRequest)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL).Section(ctx, "1,10")
		if !errors.Is(err, application.ErrSectionID) || !strings.Contains(err.Error(), "not here") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a wrong token is unauthorized", func(t *testing.T) {
		srv := serve(t, app.Log(), httpapi.WithBearerToken("right"))
		for _, opts := range [][]httpapi.ClientOption{nil, {httpapi.WithClientBearerToken("wrong")}} {
			c := newClient(t, srv.URL, opts...)
			if _, err := c.Section(ctx, "1,10"); !errors.Is(err, httpapi.ErrUnauthorized) {
				t.Fatalf("section: got %v", err)
			}
			if _, err := c.Select(ctx, 1, 10); !errors.Is(err, httpapi.ErrUnauthorized) {
				t.Fatalf("select: got %v", err)
			}
		}
		got, err := newClient(t, srv.URL, httpapi.WithClientBearerToken("right")).Select(ctx, 1, 10)
		if err != nil || len(got) != 10 {
			t.Fatalf("right token: %d notifications, %v", len(got), err)
		}
	})

	t.Run("failures of the server are operational", func(t *testing.T) {
		for _, logErr := range []error{
			&persistence.Error{Op: "select", Kind: persistence.ErrOperational, Err: errors.New("connection reset")},
			errors.New("disk on fire"),
		} {
			c := newClient(t, serve(t, &stubLog{err: logErr}, httpapi.WithLogger(discard())).URL)
			_, err := c.Select(ctx, 1, 10)
			var se *httpapi.StatusError
			if !errors.Is(err, persistence.ErrOperational) || !errors.As(err, &se) || se.StatusCode < 500 || strings.Contains(err.Error(), "disk") {
				t.Fatalf("log error %v: got %v", logErr, err)
			}
			if _, err := c.Section(ctx, "1,10"); !errors.Is(err, persistence.ErrOperational) {
				t.Fatalf("log error %v: section: got %v", logErr, err)
			}
		}
	})

	t.Run("a server that is not a notification log is an interface error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := newClient(t, srv.URL).Section(ctx, "1,10")
		var se *httpapi.StatusError
		if !errors.Is(err, persistence.ErrInterface) || !errors.As(err, &se) || se.StatusCode != 404 || se.Message != "Not Found" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a server that cannot be reached is operational", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if _, err := newClient(t, url).Select(ctx, 1, 10); !errors.Is(err, persistence.ErrOperational) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a cancelled context stops the request", func(t *testing.T) {
		arrived := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		}))
		defer srv.Close()
		ctx, cancel := context.WithCancel(ctx)
		go func() {
			<-arrived
			cancel()
		}()
		_, err := newClient(t, srv.URL).Section(ctx, "1,10")
		if !errors.Is(err, context.Canceled) || !errors.Is(err, persistence.ErrOperational) {
			t.Fatalf("got %v", err)
		}
	})
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTheClientRefusesBadResponses(t *testing.T) {
	ctx := context.Background()
	item := func(id string) string {
		return `{"id":` + id + `,"originator_id":"0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b","originator_version":1,"topic":"T","state":"AAEC"}`
	}
	tests := []struct {
		name, body string
		section    bool
	}{
		{"a body that is not JSON", "<html>hello</html>", false},
		{"an empty body", "", false},
		{"JSON of another shape", `{"items":{"id":1}}`, false},
		{"trailing garbage", `{"items":[]} {"items":[]}`, false},
		{"a duplicate key", `{"items":[],"items":[]}`, false},
		{"state that is not base64", `{"items":[{"id":1,"originator_id":"0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b","originator_version":1,"topic":"T","state":"!!"}]}`, false},
		{"an originator ID that is not a UUID", `{"items":[{"id":1,"originator_id":"nope","originator_version":1,"topic":"T","state":""}]}`, false},
		{"an ID that is not an integer", `{"items":[` + item("1.5") + `]}`, false},
		{"an ID out of range", `{"items":[` + item("1e30") + `]}`, false},
		{"IDs out of order", `{"items":[` + item("2") + `,` + item("1") + `]}`, false},
		{"an ID twice", `{"items":[` + item("2") + `,` + item("2") + `]}`, false},
		{"an ID before the start", `{"items":[` + item("0") + `]}`, false},
		{"more notifications than asked for", `{"items":[` + item("1") + `,` + item("2") + `,` + item("3") + `]}`, false},
		{"a section with a malformed ID", `{"id":"x","items":[],"next_id":null}`, true},
		{"a section with a malformed next ID", `{"id":"1,1","items":[` + item("1") + `],"next_id":"2"}`, true},
		{"a section with items and no ID", `{"id":null,"items":[` + item("1") + `],"next_id":null}`, true},
		{"a section with more notifications than asked for", `{"id":"1,3","items":[` + item("1") + `,` + item("2") + `,` + item("3") + `],"next_id":null}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := newClient(t, srv.URL)
			var err error
			if tt.section {
				_, err = c.Section(ctx, "1,2")
			} else {
				_, err = c.Select(ctx, 1, 2)
			}
			if !errors.Is(err, persistence.ErrData) {
				t.Fatalf("got %v, want an error wrapping ErrData", err)
			}
		})
	}

	t.Run("a body larger than the client reads", func(t *testing.T) {
		sent := make(chan int64, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// An endless body: the client must stop reading it.
			var n int64
			defer func() { sent <- n }()
			_, _ = w.Write([]byte(`{"items":[`))
			chunk := []byte(strings.Repeat(item("1")+",", 100))
			for n < 1<<30 {
				m, err := w.Write(chunk)
				n += int64(m)
				if err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, httpapi.WithMaxResponseBytes(1<<20)).Select(ctx, 1, 10)
		if !errors.Is(err, persistence.ErrData) || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
			t.Fatalf("got %v", err)
		}
		srv.CloseClientConnections()
		if n := <-sent; n >= 1<<30 {
			t.Fatalf("the server sent %d bytes", n)
		}
	})
}

func TestNewClientRefusesBadBaseURLs(t *testing.T) {
	for _, base := range []string{"", "localhost:8080", "ftp://host/log", "http://", "http://host/log?x=1", "http://host/log#top", "http://host/%zz", "/relative"} {
		if _, err := httpapi.NewClient(base); !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("base URL %q: got %v, want an error wrapping ErrConfig", base, err)
		}
	}
	for _, base := range []string{"http://localhost:8080", "https://log.example.com/worlds/", "http://[::1]:80/a/b"} {
		if _, err := httpapi.NewClient(base); err != nil {
			t.Fatalf("base URL %q: %v", base, err)
		}
	}
}

func TestTheClientIsSafeForConcurrentUse(t *testing.T) {
	ctx := context.Background()
	app := newWorlds(t)
	c := newClient(t, serve(t, app.Log()).URL)
	want, _ := app.Log().Select(ctx, 1, application.MaxLimit)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			s, err := c.Section(ctx, strconv.Itoa(i+1)+","+strconv.Itoa(i+4))
			if err == nil && (len(s.Items) != 4 || s.Items[0].ID != want[i].ID) {
				err = fmt.Errorf("section from %d: %v", i+1, ids(s.Items))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
