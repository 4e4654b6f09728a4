package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/strata-go/strata/persistence"
)

// The limits of a server from [NewServer]. A request of the notification
// log is a GET with a short URL and a few headers; the write timeout leaves
// time for a datastore to select a full section and for a slow reader to
// take it.
const (
	ServerReadHeaderTimeout = 10 * time.Second
	ServerReadTimeout       = 30 * time.Second
	ServerWriteTimeout      = 2 * time.Minute
	ServerIdleTimeout       = 2 * time.Minute
	ServerMaxHeaderBytes    = 64 << 10
	// ShutdownTimeout is how long [Serve] lets requests in flight finish
	// once its context is done.
	ShutdownTimeout = 10 * time.Second
)

// ServerOption configures the server that [NewServer] returns.
type ServerOption func(*http.Server)

// WithTLSConfig makes the server use a clone of cfg for TLS, for
// certificates held in memory or reloaded by cfg.GetCertificate, or for
// client certificates. [Serve] serves TLS if cfg has a certificate.
func WithTLSConfig(cfg *tls.Config) ServerOption {
	return func(s *http.Server) { s.TLSConfig = cfg.Clone() }
}

// WithServerLogger makes the server log its own errors (failed TLS
// handshakes, panics in handlers) to l, at level Warn.
func WithServerLogger(l *slog.Logger) ServerOption {
	return func(s *http.Server) {
		if l != nil {
			s.ErrorLog = slog.NewLogLogger(l.Handler(), slog.LevelWarn)
		}
	}
}

// NewServer returns an HTTP server of h on addr ("host:port") with the
// timeouts and the header limit above, so that slow or hostile clients
// cannot hold its connections or memory. The result is an ordinary
// *http.Server: change its fields before serving if the defaults do not
// fit, and serve it with [Serve] or [ListenAndServe].
func NewServer(addr string, h http.Handler, opts ...ServerOption) *http.Server {
	s := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ServerReadHeaderTimeout,
		ReadTimeout:       ServerReadTimeout,
		WriteTimeout:      ServerWriteTimeout,
		IdleTimeout:       ServerIdleTimeout,
		MaxHeaderBytes:    ServerMaxHeaderBytes,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ListenAndServe listens on srv.Addr (":http" or ":https" if it is empty)
// and runs [Serve].
func ListenAndServe(ctx context.Context, srv *http.Server, certFile, keyFile string) error {
	addr := srv.Addr
	if addr == "" {
		addr = ":http"
		if certFile != "" || hasCertificate(srv.TLSConfig) {
			addr = ":https"
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve notification log: %w", err)
	}
	return Serve(ctx, srv, ln, certFile, keyFile)
}

// Serve serves srv on ln until ctx is done, then shuts srv down, letting
// requests in flight finish for up to [ShutdownTimeout], and returns nil.
// It serves TLS if certFile and keyFile name a PEM certificate (chain) and
// its key, or if both are empty and srv.TLSConfig has a certificate. It
// returns early with the error if serving fails, such as when the files
// cannot be loaded, and it closes ln in all cases.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, certFile, keyFile string) error {
	defer ln.Close()
	if (certFile == "") != (keyFile == "") {
		return fmt.Errorf("serve notification log: %w: a TLS certificate file needs a key file and a key file a certificate file", persistence.ErrConfig)
	}
	useTLS := certFile != "" || hasCertificate(srv.TLSConfig)
	done := make(chan error, 1)
	go func() {
		if useTLS {
			done <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve notification log on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	<-done // Serve returns as soon as Shutdown begins.
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down notification log server on %s: %w", ln.Addr(), err)
	}
	return nil
}

func hasCertificate(cfg *tls.Config) bool {
	return cfg != nil && (len(cfg.Certificates) > 0 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil)
}
