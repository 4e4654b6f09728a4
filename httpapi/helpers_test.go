package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/memory" // the default store
)

// newWorlds returns a Worlds application, configured only by opts, with
// three worlds in which three things happened each: notifications 1, 5 and
// 9 are World.Created, the others World.SomethingHappened.
func newWorlds(t testing.TB, opts ...application.Option) *worlds.Worlds {
	t.Helper()
	ctx := context.Background()
	app, err := worlds.New(ctx, append([]application.Option{application.WithoutProcessEnv()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, era := range []string{"jurassic", "modern", "future"} {
		id, err := app.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, what := range []string{"dinosaurs", "trucks", "internet"} {
			if err := app.MakeItSo(ctx, id, era+" "+what); err != nil {
				t.Fatal(err)
			}
		}
	}
	return app
}

// serve serves log with a handler built with opts on a test server.
func serve(t testing.TB, log application.NotificationLog, opts ...httpapi.Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(httpapi.NewHandler(log, opts...))
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t testing.TB, baseURL string, opts ...httpapi.ClientOption) *httpapi.Client {
	t.Helper()
	c, err := httpapi.NewClient(baseURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameNotifications fails the test unless got and want are the same
// notifications, byte for byte.
func sameNotifications(t testing.TB, got, want []persistence.Notification) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d notifications %v, want %d %v", len(got), ids(got), len(want), ids(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.OriginatorID != w.OriginatorID || g.OriginatorVersion != w.OriginatorVersion ||
			g.Topic != w.Topic || !bytes.Equal(g.State, w.State) || g.Tenant != w.Tenant || g.CommitID != w.CommitID || !maps.Equal(g.Headers, w.Headers) {
			t.Fatalf("notification %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func ids(ns []persistence.Notification) []int64 {
	out := []int64{}
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

// stubLog is a notification log of fixed notifications that fails with
// err if it is not nil, and counts the calls that reach it.
type stubLog struct {
	items []persistence.Notification
	err   error
	calls atomic.Int64
}

func (l *stubLog) Section(ctx context.Context, id string) (application.Section, error) {
	start, limit, err := application.ParseSectionID(id)
	if err != nil {
		return application.Section{}, err
	}
	items, err := l.Select(ctx, start, limit)
	if err != nil {
		return application.Section{}, err
	}
	return application.SectionOf(items, limit), nil
}

func (l *stubLog) Select(_ context.Context, start int64, limit int, opts ...application.SelectOption) ([]persistence.Notification, error) {
	l.calls.Add(1)
	if l.err != nil {
		return nil, l.err
	}
	if err := application.CheckSelect(start, limit); err != nil {
		return nil, err
	}
	c := application.NewSelectConfig(opts)
	var out []persistence.Notification
	for _, n := range l.items {
		if n.ID >= start && (c.Stop <= 0 || n.ID <= c.Stop) && (len(c.Topics) == 0 || slices.Contains(c.Topics, n.Topic)) && len(out) < limit {
			out = append(out, n)
		}
	}
	return out, nil
}

// fixedNotifications are notifications with fixed IDs and bytes, for
// tests of the exact wire format.
func fixedNotifications() []persistence.Notification {
	return []persistence.Notification{
		{ID: 1, StoredEvent: persistence.StoredEvent{
			OriginatorID:      uuid.MustParse("0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"),
			OriginatorVersion: 1,
			Topic:             "World.Created",
			State:             []byte{0, 1, 2, 0xfe, 0xff},
		}},
		{ID: 3, Tenant: "acme", StoredEvent: persistence.StoredEvent{
			OriginatorID:      uuid.MustParse("0b9ab1a2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"),
			OriginatorVersion: 2,
			Topic:             "World.SomethingHappened",
			State:             []byte(`{"what":"dinosaurs"}`),
			CommitID:          uuid.MustParse("5f0c2a1b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"),
			Headers:           persistence.Headers{"correlation_id": "order-7"},
		}},
	}
}

// selfSignedCert returns a self-signed certificate for 127.0.0.1, ::1 and
// localhost, its key, both PEM-encoded, and a pool that trusts it.
func selfSignedCert(t testing.TB) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "strata httpapi test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		roots
}

// countRequests wraps h so that n counts the requests that reach it.
func countRequests(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}
