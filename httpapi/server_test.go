package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/persistence"
)

func TestNewServerHasTimeouts(t *testing.T) {
	s := httpapi.NewServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
		t.Fatalf("server without limits: %+v", s)
	}
	if s.Addr != "127.0.0.1:0" || s.Handler == nil {
		t.Fatalf("server %+v", s)
	}
}

// startServer runs httpapi.Serve in a goroutine and returns the base URL
// and a function that stops the server and returns Serve's error.
func startServer(t *testing.T, srv *http.Server, certFile, keyFile string) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpapi.Serve(ctx, srv, ln, certFile, keyFile) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(httpapi.ShutdownTimeout + 5*time.Second):
			t.Fatal("Serve did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

func TestServeWithACertificateFilePair(t *testing.T) {
	ctx := context.Background()
	app := newWorlds(t)
	certPEM, keyPEM, roots := selfSignedCert(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer("", httpapi.NewHandler(app.Log(), httpapi.WithBearerToken("tls-token")))
	addr, stop := startServer(t, srv, certFile, keyFile)

	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
	c := newClient(t, "https://"+addr, httpapi.WithHTTPClient(trusting), httpapi.WithClientBearerToken("tls-token"))
	got, err := c.Select(ctx, 1, application.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := app.Log().Select(ctx, 1, application.MaxLimit)
	sameNotifications(t, got, want)

	// A client that does not trust the certificate reads nothing.
	if _, err := newClient(t, "https://"+addr).Select(ctx, 1, 10); !errors.Is(err, persistence.ErrOperational) {
		t.Fatalf("untrusting client: got %v", err)
	}
	var unknownAuthority x509.UnknownAuthorityError
	if _, err := newClient(t, "https://"+addr).Section(ctx, "1,10"); !errors.As(err, &unknownAuthority) {
		t.Fatalf("untrusting client: got %v", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after its context ended", err)
	}
	trusting.CloseIdleConnections()
	if _, err := c.Select(ctx, 1, 10); !errors.Is(err, persistence.ErrOperational) {
		t.Fatalf("after shutdown: got %v", err)
	}
}

func TestServeWithACertificateInMemory(t *testing.T) {
	certPEM, keyPEM, roots := selfSignedCert(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	app := newWorlds(t)
	srv := httpapi.NewServer("", httpapi.NewHandler(app.Log()), httpapi.WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}))
	addr, _ := startServer(t, srv, "", "")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer hc.CloseIdleConnections()
	s, err := newClient(t, "https://"+addr, httpapi.WithHTTPClient(hc)).Section(context.Background(), "1,5")
	if err != nil || s.ID != "1,5" || s.NextID != "6,10" {
		t.Fatalf("section %+v: %v", s, err)
	}
}

func TestServeWithoutTLS(t *testing.T) {
	app := newWorlds(t)
	addr, stop := startServer(t, httpapi.NewServer("", httpapi.NewHandler(app.Log())), "", "")
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	if _, err := newClient(t, "http://"+addr, httpapi.WithHTTPClient(hc)).Section(context.Background(), "1,5"); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesBadCertificates(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	for _, files := range [][2]string{{missing, ""}, {"", missing}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		err = httpapi.Serve(context.Background(), httpapi.NewServer("", http.NotFoundHandler()), ln, files[0], files[1])
		if !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("files %q: got %v", files, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = httpapi.Serve(context.Background(), httpapi.NewServer("", http.NotFoundHandler()), ln, missing, missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing files: got %v", err)
	}
	// Serve closed the listener.
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener after Serve: %v", err)
	}
}

func TestListenAndServeStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- httpapi.ListenAndServe(ctx, httpapi.NewServer("127.0.0.1:0", http.NotFoundHandler()), "", "")
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err := httpapi.ListenAndServe(context.Background(), httpapi.NewServer("127.0.0.1:-1", http.NotFoundHandler()), "", "")
	if err == nil {
		t.Fatal("listened on port -1")
	}
}
