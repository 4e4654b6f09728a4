package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

// Option configures the handler that [NewHandler] returns.
type Option func(*handler)

// WithBearerToken makes the handler require the header
// "Authorization: Bearer <token>" on every request. Requests without it or
// with another token get 401 Unauthorized and read nothing from the log.
//
// An empty token matches no request, so that a secret that is missing from
// the environment locks the log rather than opening it.
func WithBearerToken(token string) Option {
	return func(h *handler) {
		h.auth = true
		h.tokenSet = token != ""
		// Comparing digests of equal length keeps the time the comparison
		// takes independent of the length of either token.
		h.tokenHash = sha256.Sum256([]byte(token))
	}
}

// WithLogger sets the logger of the failures of the log that are not the
// caller's fault (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(h *handler) {
		if l != nil {
			h.logger = l
		}
	}
}

type handler struct {
	log       application.NotificationLog
	logger    *slog.Logger
	auth      bool
	tokenSet  bool
	tokenHash [sha256.Size]byte
	mux       *http.ServeMux
	tel       *observe.Telemetry
}

// NewHandler returns an http.Handler that serves log as JSON, read-only:
//
//	GET /sections/{id}                                   a section, id such as "1,10"
//	GET /notifications?start=N&limit=M[&topics=a,b][&stop=K]  a select
//
// HEAD is allowed wherever GET is. The paths are relative to where the
// handler is mounted: to serve it under a prefix, strip the prefix,
//
//	mux.Handle("/worlds/", http.StripPrefix("/worlds", httpapi.NewHandler(app.Log())))
//
// and give the client the base URL with the prefix
// ("https://host/worlds").
func NewHandler(log application.NotificationLog, opts ...Option) http.Handler {
	h := &handler{log: log, logger: slog.Default(), mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	// Patterns without a method, so that other methods get the log's JSON
	// error rather than the mux's plain-text one.
	h.mux.HandleFunc("/sections/{id}", h.route(h.section))
	h.mux.HandleFunc("/notifications", h.route(h.notifications))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found: the notification log has /sections/{id} and /notifications")
	})
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL == nil {
		writeError(w, http.StatusBadRequest, "request without a URL")
		return
	}
	h.observed(w, r, h.serve)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	if h.auth && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if r.URL == nil {
		writeError(w, http.StatusBadRequest, "request without a URL")
		return
	}
	if p := r.URL.Path; !strings.HasPrefix(p, "/") || path.Clean(p) != p {
		// The mux would redirect to the clean path, in HTML.
		writeError(w, http.StatusNotFound, "not found: the notification log has /sections/{id} and /notifications")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// route checks the method and the query string of a request to one of
// the log's resources before serve handles it.
func (h *handler) route(serve func(http.ResponseWriter, *http.Request, url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %q is not allowed: use GET or HEAD", r.Method))
			return
		}
		query, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, http.StatusBadRequest, "malformed query string")
			return
		}
		serve(w, r, query)
	}
}

func (h *handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimLeft(token, " ")))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1 && h.tokenSet
}

func (h *handler) section(w http.ResponseWriter, r *http.Request, query url.Values) {
	if err := onlyParams(query); err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.log.Section(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	annotate(r, s.Items)
	h.write(w, r, sectionJSON{ID: nullable(s.ID), Items: toJSON(s.Items), NextID: nullable(s.NextID)})
}

func (h *handler) notifications(w http.ResponseWriter, r *http.Request, query url.Values) {
	start, limit, opts, err := parseSelect(query)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.log.Select(r.Context(), start, limit, opts...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	annotate(r, items)
	h.write(w, r, notificationsJSON{Items: toJSON(items)})
}

// parseSelect reads the parameters of a select. Every parameter but topics
// may be given once; unknown parameters are refused rather than ignored,
// so that a misspelt "stop" does not silently select more.
func parseSelect(q url.Values) (start int64, limit int, opts []application.SelectOption, err error) {
	if err := onlyParams(q, "start", "limit", "topics", "stop"); err != nil {
		return 0, 0, nil, err
	}
	if start, err = intParam(q, "start", true); err != nil {
		return 0, 0, nil, err
	}
	n, err := intParam(q, "limit", true)
	if err != nil {
		return 0, 0, nil, err
	}
	if n < 1 || n > application.MaxLimit {
		// Checked before the conversion to int, which must not wrap; worded
		// as application.CheckSelect words it.
		return 0, 0, nil, fmt.Errorf("%w: limit %d is not between 1 and %d", application.ErrQuery, n, application.MaxLimit)
	}
	limit = int(n)
	if err := application.CheckSelect(start, limit); err != nil {
		return 0, 0, nil, err
	}
	if _, ok := q["stop"]; ok {
		stop, err := intParam(q, "stop", false)
		if err != nil {
			return 0, 0, nil, err
		}
		if stop < 0 {
			return 0, 0, nil, fmt.Errorf("%w: stop %d is negative", application.ErrQuery, stop)
		}
		opts = append(opts, application.Stop(stop))
	}
	var topics []string
	for _, v := range q["topics"] {
		for t := range strings.SplitSeq(v, ",") {
			if t == "" {
				return 0, 0, nil, fmt.Errorf("%w: empty topic in %q", application.ErrQuery, v)
			}
			topics = append(topics, t)
		}
	}
	if len(topics) > 0 {
		opts = append(opts, application.Topics(topics...))
	}
	return start, limit, opts, nil
}

// onlyParams refuses parameters other than the allowed ones.
func onlyParams(q url.Values, allowed ...string) error {
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("%w: unknown parameter %q", application.ErrQuery, k)
		}
	}
	return nil
}

// intParam parses the parameter name, which must be given once.
func intParam(q url.Values, name string, required bool) (int64, error) {
	vs := q[name]
	switch {
	case len(vs) == 0 && required:
		return 0, fmt.Errorf("%w: missing parameter %s", application.ErrQuery, name)
	case len(vs) == 0:
		return 0, nil
	case len(vs) > 1:
		return 0, fmt.Errorf("%w: parameter %s is given %d times", application.ErrQuery, name, len(vs))
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%w: %s %.40q is out of range", application.ErrQuery, name, vs[0])
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s %.40q is not a whole number", application.ErrQuery, name, vs[0])
	}
	return n, nil
}

// fail answers with the status that err calls for. The caller's mistakes
// are explained; other failures are logged and answered with a generic
// message, which does not tell a client about the datastore.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, application.ErrSectionID) || errors.Is(err, application.ErrQuery) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	if errors.Is(err, persistence.ErrOperational) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		status, msg = http.StatusServiceUnavailable, "notification log unavailable, try again later"
	}
	level := slog.LevelError
	if r.Context().Err() != nil {
		// The client went away: nobody reads the answer.
		level = slog.LevelDebug
	}
	h.logger.LogAttrs(r.Context(), level, "read notification log",
		slog.String(observe.KeyHTTPMethod, r.Method),
		slog.String(observe.KeyHTTPRoute, route(r.URL.Path)),
		slog.String("url.path", r.URL.Path),
		slog.String("url.query", r.URL.RawQuery),
		slog.Int(observe.KeyHTTPStatus, status),
		slog.String(observe.KeyErrorKind, observe.ErrorKind(err)),
		slog.Any("error", err))
	writeError(w, status, msg)
}

func (h *handler) write(w http.ResponseWriter, r *http.Request, v any) {
	// A topic that is not UTF-8 (a damaged row) is served with its bad
	// bytes replaced rather than failing the whole response: the section
	// serves what it has, and the reader that cannot resolve the topic
	// reports that notification.
	body, err := json.Marshal(v, jsontext.AllowInvalidUTF8(true))
	if err != nil {
		// The log returned something JSON cannot carry, such as a topic
		// that is not UTF-8.
		h.fail(w, r, fmt.Errorf("encode response: %w: %w", persistence.ErrData, err))
		return
	}
	writeBody(w, http.StatusOK, body)
}

// annotate adds the notification IDs of a response to the request's span.
func annotate(r *http.Request, items []persistence.Notification) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int(observe.KeyEventCount, len(items)))
	if len(items) > 0 {
		span.SetAttributes(attribute.Int64(observe.KeyFirstNotificationID, items[0].ID), attribute.Int64(observe.KeyLastNotificationID, items[len(items)-1].ID))
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, err := json.Marshal(errorJSON{Error: strings.ToValidUTF8(msg, "\uFFFD")})
	if err != nil {
		body = []byte(`{"error":"error"}`)
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Notifications may be private, and what a section holds changes
	// until it is full.
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
