package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/strata-go/strata/persistence"
)

// The JetStream headers and API error codes this package uses (ADR-50 for
// batches, ADR-31 for direct gets).
const (
	hdrBatchID        = "Nats-Batch-Id"
	hdrBatchSeq       = "Nats-Batch-Sequence"
	hdrBatchCommit    = "Nats-Batch-Commit"
	hdrExpectedSubSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrMsgID          = "Nats-Msg-Id"
	hdrSubject        = "Nats-Subject"
	hdrSequence       = "Nats-Sequence"
	hdrNumPending     = "Nats-Num-Pending"
	hdrTTL            = "Nats-TTL"

	codeWrongLastSeq         = 10071
	codeWrongLastSeqConstant = 10164
	codeStreamNotFound       = 10059
	codeMessageNotFound      = 10037
	codeDuplicateInBatch     = 10201
	codeDuplicateConflict    = 10158
	codeBatchDisabled        = 10174
	codeBatchIncomplete      = 10176
	codeBatchTooManyInflight = 10210
	codeNoStreamLeader       = 10008
)

// MaxBatch is the most messages one save may have: the servers' limit on
// an atomic batch. A save's events and its tracking record are one message
// each.
const MaxBatch = 1000

// apiError is the error part of a JetStream API response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (code %d, error code %d)", e.Description, e.Code, e.ErrCode)
}

// msg is one stored message, read back.
type msg struct {
	subject string
	seq     uint64
	data    []byte
}

// client does the JetStream requests of one stream on one connection: an
// atomic batch publish, direct gets, and leader reads. It knows nothing of
// Strata's recorders, so that it can be tested and measured alone.
type client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	timeout time.Duration
}

// withTimeout bounds ctx by the client's timeout.
func (c *client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < c.timeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// pubAck is the answer to a publish or a batch commit.
type pubAck struct {
	Stream string    `json:"stream"`
	Seq    uint64    `json:"seq"`
	Batch  string    `json:"batch"`
	Count  int       `json:"count"`
	Error  *apiError `json:"error"`
}

// ackEvery is how many staged messages of a batch go out between waits
// for the servers.
const ackEvery = 100

// errSend is wrapped by errors of requests that certainly did not reach
// the servers.
var errSend = errors.New("not sent")

// publishBatch publishes msgs as one atomic batch and returns the stream
// sequence of the last. The messages before the commit go out without
// waiting (the connection keeps their order); the commit's answer says
// whether all of them were stored or none.
func (c *client) publishBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	id := nuid.Next()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	for i, m := range msgs[:len(msgs)-1] {
		if (i+1)%ackEvery != 0 {
			if err := c.nc.PublishMsg(m); err != nil {
				// Staged messages without a commit are dropped by the
				// servers after their batch timeout: nothing is stored.
				return 0, fmt.Errorf("%w: %w", errSend, err)
			}
			continue
		}
		// Flow control: a large batch waits for the servers to have
		// staged every ackEvery messages, or they drop what overflows
		// and the batch is incomplete.
		resp, err := c.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errSend, err)
		}
		if len(resp.Data) > 0 {
			var ack pubAck
			if json.Unmarshal(resp.Data, &ack) == nil && ack.Error != nil {
				return 0, fmt.Errorf("%w: %w", errSend, ack.Error)
			}
		}
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			if nf := c.notFound(ctx); nf != nil {
				return 0, nf
			}
		}
		return 0, err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("batch commit: unreadable answer %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Count != 0 && ack.Count != len(msgs) {
		return 0, fmt.Errorf("batch commit: the servers stored %d messages of %d", ack.Count, len(msgs))
	}
	return ack.Seq, nil
}

// storedMsg is a message in a STREAM.MSG.GET answer.
type storedMsg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Data    []byte `json:"data"`
}

// lastMsg returns the last message on subject (which may have wildcards),
// asking the stream's leader, so that the answer is never older than an
// acknowledged write. It returns nil if there is none.
func (c *client) lastMsg(ctx context.Context, subject string) (*msg, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		m, err := c.lastMsgOnce(ctx, subject)
		var ae *apiError
		if !errors.Is(err, nats.ErrNoResponders) && !(errors.As(err, &ae) && (ae.ErrCode == codeNoStreamLeader || ae.Code == 503)) {
			return m, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func (c *client) lastMsgOnce(ctx context.Context, subject string) (*msg, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	resp, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+c.stream, req)
	if err != nil {
		return nil, err
	}
	var r struct {
		Message *storedMsg `json:"message"`
		Error   *apiError  `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("message get: unreadable answer: %w", err)
	}
	if r.Error != nil {
		if r.Error.ErrCode == codeMessageNotFound {
			return nil, nil
		}
		return nil, r.Error
	}
	if r.Message == nil {
		return nil, nil
	}
	return &msg{subject: r.Message.Subject, seq: r.Message.Seq, data: r.Message.Data}, nil
}

// directGet reads up to batch messages on subject (which may have
// wildcards) from sequence seq, from any replica, in one request. It
// returns the messages and how many more match after them. While no
// replica serves direct gets (a new stream, a leader election) it asks
// again, within the client's timeout: reads are idempotent.
func (c *client) directGet(ctx context.Context, subject string, seq uint64, batch int) ([]msg, uint64, error) {
	req, _ := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
		Batch   int    `json:"batch"`
	}{max(seq, 1), subject, batch})
	return c.direct(ctx, req, batch)
}

// multiLast returns the last message of every subject that filter (with
// wildcards) matches, at most 1024, from any replica, in one request.
func (c *client) multiLast(ctx context.Context, filter string) ([]msg, error) {
	req, _ := json.Marshal(map[string][]string{"multi_last": {filter}})
	ms, _, err := c.direct(ctx, req, 64)
	return ms, err
}

func (c *client) direct(ctx context.Context, req []byte, batch int) ([]msg, uint64, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		ms, pending, err := c.directOnce(ctx, req, batch)
		if !errors.Is(err, nats.ErrNoResponders) {
			return ms, pending, err
		}
		if wait == time.Millisecond {
			if nf := c.notFound(ctx); nf != nil {
				return nil, 0, nf
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, err
		case <-t.C:
		}
	}
}

func (c *client) directOnce(ctx context.Context, req []byte, batch int) ([]msg, uint64, error) {
	inbox := c.nc.NewRespInbox()
	ch := make(chan *nats.Msg, min(batch, 256)+1)
	sub, err := c.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errSend, err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+c.stream, inbox, req); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errSend, err)
	}
	var out []msg
	for {
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case m := <-ch:
			switch status := m.Header.Get("Status"); status {
			case "":
			case "404":
				return out, 0, nil
			case "204": // end of batch
				pending, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				return out, pending, nil
			case "503":
				return nil, 0, nats.ErrNoResponders
			default:
				return nil, 0, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
			}
			s, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("direct get: message without a sequence")
			}
			out = append(out, msg{subject: m.Header.Get(hdrSubject), seq: s, data: m.Data})
		}
	}
}

// notFound returns the servers' error if the client's stream does not
// exist, or nil. Nothing answers a publish to, or a direct get of, a
// stream that does not exist, as nothing does while a stream elects its
// leader: asking the meta leader tells the two apart, so that a missing
// stream fails at once with ErrNoTable rather than after the timeout.
func (c *client) notFound(ctx context.Context) error {
	// The meta leader answers at once; without one (a minority), give up
	// soon, as the call that asked would have.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := c.js.Stream(ctx, c.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &apiError{Code: 404, ErrCode: codeStreamNotFound, Description: fmt.Sprintf("stream %s not found", c.stream)}
	}
	return nil
}

// purge deletes the messages on subject (which may have wildcards) in one
// operation, and returns how many there were.
func (c *client) purge(ctx context.Context, subject string) (uint64, error) {
	req, _ := json.Marshal(map[string]string{"filter": subject})
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+c.stream, req)
	if err != nil {
		return 0, err
	}
	var r struct {
		Success bool      `json:"success"`
		Purged  uint64    `json:"purged"`
		Error   *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return 0, fmt.Errorf("purge: unreadable answer: %w", err)
	}
	if r.Error != nil {
		return 0, r.Error
	}
	return r.Purged, nil
}

// classify returns the error of a failed request as a persistence error
// of the right kind. sent says whether a write may have reached the
// servers: a write whose answer did not come back has an unknown outcome.
func classify(op string, err error, write bool) error {
	var ae *apiError
	var je jetstream.JetStreamError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		if write && !errors.Is(err, errSend) {
			return &persistence.Error{Op: op, Kind: persistence.ErrUnknownOutcome, Err: err}
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	case errors.Is(err, errSend) || errors.Is(err, nats.ErrNoResponders):
		// No server subscribes to the stream's subjects: the stream has
		// no leader, nothing was stored.
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	case errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription):
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: err}
	case errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrConnectionDraining):
		if write {
			return &persistence.Error{Op: op, Kind: persistence.ErrUnknownOutcome, Err: err}
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	case errors.As(err, &ae):
		switch ae.ErrCode {
		case codeStreamNotFound:
			return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: err}
		case codeBatchDisabled:
			return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("%w: the stream does not allow atomic publish", err)}
		}
		if ae.Code == 503 || ae.Code == 429 || ae.Code >= 500 || ae.ErrCode == codeBatchIncomplete {
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrDatabase, Err: err}
	case errors.As(err, &je) && je.APIError() != nil && je.APIError().ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: err}
	}
	return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
}
