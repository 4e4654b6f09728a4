package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/persistence"
)

// ErrUnauthorized means the server refused the request's bearer token, or
// the lack of one (401 Unauthorized or 403 Forbidden).
var ErrUnauthorized = errors.New("unauthorized")

// DefaultMaxResponseBytes is the largest response body a [Client] reads
// unless [WithMaxResponseBytes] says otherwise: room for a full section of
// MaxLimit notifications of about 48 KiB of state each.
const DefaultMaxResponseBytes = 64 << 20

// DefaultClientTimeout is the timeout of the HTTP client that a [Client]
// uses unless [WithHTTPClient] gives one, so that a server that stops
// answering does not block a reader whose context has no deadline forever.
const DefaultClientTimeout = time.Minute

// maxErrorBytes bounds the body of an error response that a client reads.
const maxErrorBytes = 64 << 10

// ClientOption configures a [Client].
type ClientOption func(*Client)

// WithClientBearerToken makes the client send "Authorization: Bearer
// <token>" with every request, for a handler built [WithBearerToken]. Use
// an https base URL, or the token crosses the network in clear text.
func WithClientBearerToken(token string) ClientOption {
	return func(c *Client) { c.token = token }
}

// WithHTTPClient makes the client send its requests with hc, for TLS
// settings (such as the roots that verify a self-signed server
// certificate), proxies and timeouts.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithMaxResponseBytes sets the largest response body the client reads
// (default [DefaultMaxResponseBytes]); a larger one is an error wrapping
// persistence.ErrData. It must cover the largest section the client asks
// for.
func WithMaxResponseBytes(n int64) ClientOption {
	return func(c *Client) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// Client is the notification log of an application that another process
// serves with [NewHandler]. It implements application.NotificationLog, so
// that a follower reads a remote leader as it reads a local one, and it
// returns the same errors:
//
//   - application.ErrSectionID and application.ErrQuery for arguments that
//     the local log refuses (checked before anything is sent) or that the
//     server refuses (such as a topic it does not know);
//   - [ErrUnauthorized] if the server refuses the bearer token;
//   - persistence.ErrOperational if the server cannot be reached, fails
//     (5xx) or asks to be called later (408, 429): retrying may succeed;
//   - persistence.ErrData if the response cannot be decoded, is larger than
//     the client reads, or breaks the log's guarantees (notifications out of
//     order or more than were asked for);
//   - persistence.ErrInterface for other responses, such as 404 Not Found
//     from a base URL that does not point at a notification log.
//
// Errors from responses are also a [*StatusError]. The state of
// notifications is the exact stored bytes, still encrypted or compressed
// if the application encrypts or compresses: decode it with the mapper of
// an application that has the same types and cipher key.
//
// A Client is safe for concurrent use.
type Client struct {
	base     *url.URL
	http     *http.Client
	token    string
	maxBytes int64
}

var _ application.NotificationLog = (*Client)(nil)

// NewClient returns the client of the notification log served at baseURL
// (an http or https URL, with the path prefix the handler is mounted
// under, if any). A base URL that is not one is an error wrapping
// persistence.ErrConfig.
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("new notification log client: %w: base URL: %w", persistence.ErrConfig, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("new notification log client: %w: base URL %q: scheme is not http or https", persistence.ErrConfig, u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("new notification log client: %w: base URL %q has no host", persistence.ErrConfig, u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("new notification log client: %w: base URL %q has a query or a fragment", persistence.ErrConfig, u.Redacted())
	}
	c := &Client{base: u, http: &http.Client{Timeout: DefaultClientTimeout}, maxBytes: DefaultMaxResponseBytes}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Section returns the section with the given ID ("1,10") from the server.
func (c *Client) Section(ctx context.Context, sectionID string) (application.Section, error) {
	start, limit, err := application.ParseSectionID(sectionID)
	if err != nil {
		return application.Section{}, err
	}
	// The ID as asked, normalised: its span may exceed the limit.
	_, lastText, _ := strings.Cut(sectionID, ",")
	last, _ := strconv.ParseInt(strings.TrimSpace(lastText), 10, 64)
	id := strconv.FormatInt(start, 10) + "," + strconv.FormatInt(last, 10)
	op := "get section " + id
	var body sectionJSON
	if err := c.get(ctx, op, c.base.JoinPath("sections", id), application.ErrSectionID, &body); err != nil {
		return application.Section{}, err
	}
	s := application.Section{ID: deref(body.ID), Items: fromJSON(body.Items), NextID: deref(body.NextID)}
	if err := checkItems(s.Items, start, limit, 0); err != nil {
		return application.Section{}, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
	}
	if err := checkSection(s); err != nil {
		return application.Section{}, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: fmt.Errorf("response: %w", err)}
	}
	return s, nil
}

// checkSection checks a section's IDs against its notifications: its ID is
// made of its first and last notifications' IDs, and the next section
// starts after its last. IDs may be sparse, so the spans are not checked.
func checkSection(s application.Section) error {
	if len(s.Items) == 0 {
		if s.ID != "" || s.NextID != "" {
			return fmt.Errorf("a section without notifications has ID %q and next ID %q", s.ID, s.NextID)
		}
		return nil
	}
	first, last := s.Items[0].ID, s.Items[len(s.Items)-1].ID
	if want := strconv.FormatInt(first, 10) + "," + strconv.FormatInt(last, 10); s.ID != want {
		return fmt.Errorf("section ID %q, but its notifications are %s", s.ID, want)
	}
	if s.NextID == "" {
		return nil
	}
	next, _, err := application.ParseSectionID(s.NextID)
	if err != nil {
		return err
	}
	if next != last+1 {
		return fmt.Errorf("next section ID %q does not start after notification %d", s.NextID, last)
	}
	return nil
}

// Select returns up to limit notifications from notification ID start from
// the server, filtered by the options' topics and stop.
func (c *Client) Select(ctx context.Context, start int64, limit int, opts ...application.SelectOption) ([]persistence.Notification, error) {
	cfg := application.NewSelectConfig(opts)
	if err := application.CheckSelect(start, limit); err != nil {
		return nil, err
	}
	if cfg.Stop < 0 {
		return nil, fmt.Errorf("%w: stop %d is negative", application.ErrQuery, cfg.Stop)
	}
	q := url.Values{}
	q.Set("start", strconv.FormatInt(start, 10))
	q.Set("limit", strconv.Itoa(limit))
	for _, t := range cfg.Topics {
		// The local log refuses these as unknown topics; the wire format
		// could not carry them.
		if t == "" || strings.Contains(t, ",") {
			return nil, fmt.Errorf("%w: topic %q is empty or has a comma", application.ErrQuery, t)
		}
	}
	if len(cfg.Topics) > 0 {
		q.Set("topics", strings.Join(cfg.Topics, ","))
	}
	if cfg.Stop > 0 {
		// Stop 0 means no stop, as it does locally.
		q.Set("stop", strconv.FormatInt(cfg.Stop, 10))
	}
	u := c.base.JoinPath("notifications")
	u.RawQuery = q.Encode()
	op := fmt.Sprintf("select %d notifications from %d", limit, start)
	var body notificationsJSON
	if err := c.get(ctx, op, u, application.ErrQuery, &body); err != nil {
		return nil, err
	}
	items := fromJSON(body.Items)
	if err := checkItems(items, start, limit, cfg.Stop); err != nil {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrData, Err: err}
	}
	return items, nil
}

// checkItems checks that a response keeps the guarantees of a log: at most
// limit notifications, in ascending order of ID, from start, up to stop.
func checkItems(items []persistence.Notification, start int64, limit int, stop int64) error {
	if len(items) > limit {
		return fmt.Errorf("response: %d notifications, asked for %d", len(items), limit)
	}
	prev := max(start, 1) - 1
	for _, n := range items {
		if n.ID <= prev {
			return fmt.Errorf("response: notification ID %d after %d", n.ID, prev)
		}
		if stop > 0 && n.ID > stop {
			return fmt.Errorf("response: notification ID %d after stop %d", n.ID, stop)
		}
		prev = n.ID
	}
	return nil
}

// get sends a GET request to u and decodes the JSON of a 200 response into
// v. A 400 response wraps badRequest.
func (c *Client) get(ctx context.Context, op string, u *url.URL, badRequest error, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	inject(req)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL error says which URL; it also wraps a context's error.
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w", op, statusError(resp, badRequest))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("read response: %w", err)}
	}
	if int64(len(body)) > c.maxBytes {
		return &persistence.Error{Op: op, Kind: persistence.ErrData, Err: fmt.Errorf("response is larger than %d bytes", c.maxBytes)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrData, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}

// StatusError is the error of a response whose status is not 200 OK. It
// wraps the kind of failure that the status means (see [Client]), so that
// errors.Is(err, application.ErrQuery) holds for a 400 response to a
// select.
type StatusError struct {
	// StatusCode is the response's HTTP status code.
	StatusCode int
	// Message is the server's explanation, or the status text if the
	// response has none.
	Message string
	// Kind is application.ErrSectionID, application.ErrQuery,
	// ErrUnauthorized, persistence.ErrOperational or
	// persistence.ErrInterface.
	Kind error
}

// Error returns the status and the server's message.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// Unwrap returns the kind of failure.
func (e *StatusError) Unwrap() error { return e.Kind }

func statusError(resp *http.Response, badRequest error) *StatusError {
	e := &StatusError{StatusCode: resp.StatusCode, Message: http.StatusText(resp.StatusCode), Kind: persistence.ErrInterface}
	switch code := resp.StatusCode; {
	case code == http.StatusBadRequest:
		e.Kind = badRequest
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Kind = ErrUnauthorized
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		e.Kind = persistence.ErrOperational
	}
	// The body is only an explanation: a failure to read or decode it
	// leaves the status text.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var msg errorJSON
	if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
		e.Message = msg.Error
	}
	if e.Message == "" {
		e.Message = "status " + strconv.Itoa(resp.StatusCode)
	}
	return e
}
