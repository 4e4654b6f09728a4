package benchsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/strata-go/strata/persistence"
	js "github.com/strata-go/strata/persistence/jetstream"
)

// JetStreamWriters are the numbers of writers the JetStream single-event
// save case runs with: its scaling figure.
var JetStreamWriters = []int{1, 4, ManyWriters}

// JetStream returns the cases of the JetStream adapter on new streams of
// the cluster at url (one or several servers, comma-separated, as NATS_URL
// takes them), three replicas on file storage, and a function that
// deletes them. Strata's recorders and the baselines share the factory's
// connection. The baseline is the nats.go jetstream client publishing the
// bytes Strata stores for an event, with js.Publish, to a stream of its
// own of the same replicas and storage, one subject per aggregate: no
// atomic batch, no expected sequence, no commit ID. Reads are an ordered
// consumer, the client's own way to read a subject or a stream.
func JetStream(ctx context.Context, url string) ([]Case, func(), error) {
	tag := strings.ToUpper(uuid.NewString()[:8])
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var payload []byte // what Strata stores for an event of the benchmark's size
	pair := func(app string) (Pair, *rawJetStream, error) {
		f, err := js.Open(ctx, js.Config{URL: url, AppName: app, StreamPrefix: "BENCH_" + tag, SubjectPrefix: "bench" + strings.ToLower(tag) + "." + app,
			Replicas: 3, CreateStreams: true})
		if err != nil {
			return Pair{}, nil, err
		}
		closers = append(closers, func() { f.Close() })
		client, err := jetstream.New(f.Conn())
		if err != nil {
			return Pair{}, nil, err
		}
		closers = append(closers, func() { deleteStreams(client, "BENCH_"+tag) })
		rec, err := f.ApplicationRecorder(ctx)
		if err != nil {
			return Pair{}, nil, err
		}
		raw := &rawJetStream{js: client, stream: "BENCH_" + tag + "_RAW_" + strings.ToUpper(app), subject: "benchraw" + strings.ToLower(tag) + "." + app}
		if _, err := client.CreateStream(ctx, jetstream.StreamConfig{Name: raw.stream, Subjects: []string{raw.subject + ".>"},
			Replicas: 3, Storage: jetstream.FileStorage, AllowDirect: true, AllowAtomicPublish: true}); err != nil {
			return Pair{}, nil, err
		}
		if payload != nil {
			raw.payload = payload
			return Pair{rec, raw}, raw, nil
		}
		// The baseline publishes the bytes Strata stores for an event of
		// the benchmark's size: one saved and read back.
		e := Events(1, StateSize)
		e[0].CommitID = uuid.New()
		if _, err := rec.InsertEvents(ctx, e); err != nil {
			return Pair{}, nil, err
		}
		s, err := client.Stream(ctx, f.StreamName())
		if err != nil {
			return Pair{}, nil, err
		}
		m, err := s.GetLastMsgForSubject(ctx, ">")
		if err != nil {
			return Pair{}, nil, fmt.Errorf("read back Strata's message: %w", err)
		}
		payload, raw.payload = m.Data, m.Data
		return Pair{rec, raw}, raw, nil
	}
	writes, raw, err := pair("writes")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	reads, _, err := pair("reads")
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	var cases []Case
	for _, w := range JetStreamWriters {
		cases = append(cases, Case{Name: "save 1 event", Baseline: "raw js.Publish", Writers: w, Events: 1, Target: jetStreamSaveTarget,
			Setup: func(context.Context) (Op, Op, error) {
				strata := func(ctx context.Context, _ int) error {
					e := Events(1, StateSize)
					e[0].CommitID = uuid.New()
					_, err := writes.Recorder.InsertEvents(ctx, e)
					return err
				}
				base := func(ctx context.Context, _ int) error { return raw.Insert(ctx, Events(1, StateSize)) }
				return strata, base, nil
			}})
	}
	// Strata's client apart from the servers' work: the same message
	// published by hand as the same request, an atomic batch of one with
	// the expected subject sequence and the message ID.
	cases = append(cases, Case{Name: "save 1 event", Baseline: "raw atomic batch, same headers", Writers: ManyWriters, Events: 1, Target: jetStreamSaveTarget,
		Setup: func(context.Context) (Op, Op, error) {
			strata := func(ctx context.Context, _ int) error {
				e := Events(1, StateSize)
				e[0].CommitID = uuid.New()
				_, err := writes.Recorder.InsertEvents(ctx, e)
				return err
			}
			base := func(ctx context.Context, _ int) error { return raw.batchOfOne(ctx, uuid.New()) }
			return strata, base, nil
		}})
	for _, c := range RecorderCases(writes, reads, jetStreamSaveTarget, jetStreamReadTarget) {
		switch {
		case c.Name == "save 100 events":
			c.Baseline = "raw js.PublishAsync"
		case strings.HasPrefix(c.Name, "catch up"), strings.HasPrefix(c.Name, "get aggregate"):
			c.Baseline = "raw ordered consumer"
		default:
			continue // the single-event saves are above
		}
		cases = append(cases, c)
	}
	return cases, closeAll, nil
}

// The targets of the JetStream cases: Strata's save is one request, as the
// raw publish is, with the checks that make it safe (80% of raw); its
// reads decode every envelope, which the baseline does not.
const (
	jetStreamSaveTarget = 1 / 0.8
	jetStreamReadTarget = 1 / 0.8
)

// DeleteJetStreamStreams deletes the streams of the cluster at url whose
// names begin with prefix: what a benchmark on a fresh store made.
func DeleteJetStreamStreams(url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	client, err := jetstream.New(nc)
	if err != nil {
		return
	}
	deleteStreams(client, prefix)
}

func deleteStreams(client jetstream.JetStream, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var doomed []string
	names := client.StreamNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		client.DeleteStream(ctx, n)
	}
}

// rawJetStream is the baseline on JetStream: the client publishing one
// message per event, on one subject per aggregate, and reading them back
// with ordered consumers.
type rawJetStream struct {
	js      jetstream.JetStream
	stream  string
	subject string // the stream holds subject.>
	payload []byte // the bytes of each message
}

func (r *rawJetStream) aggregate(id uuid.UUID) string { return r.subject + "." + id.String() }

// Insert publishes the events' messages: one js.Publish for one event,
// otherwise all at once with PublishAsync and then every acknowledgement
// awaited, which is not atomic.
func (r *rawJetStream) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	if len(events) == 1 {
		_, err := r.js.Publish(ctx, r.aggregate(events[0].OriginatorID), r.payload)
		return err
	}
	acks := make([]jetstream.PubAckFuture, len(events))
	for i, e := range events {
		a, err := r.js.PublishAsync(r.aggregate(e.OriginatorID), r.payload)
		if err != nil {
			return err
		}
		acks[i] = a
	}
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// batchOfOne publishes the message of a new aggregate as Strata does: an
// atomic batch of one message (ADR-50) that expects the subject to be
// empty and carries a message ID for deduplication.
func (r *rawJetStream) batchOfOne(ctx context.Context, id uuid.UUID) error {
	m := nats.NewMsg(r.aggregate(id))
	m.Data = r.payload
	m.Header.Set("Nats-Expected-Last-Subject-Sequence", "0")
	m.Header.Set("Nats-Msg-Id", m.Subject+"/"+uuid.NewString())
	m.Header.Set("Nats-Batch-Id", nuid.Next())
	m.Header.Set("Nats-Batch-Sequence", "1")
	m.Header.Set("Nats-Batch-Commit", "1")
	resp, err := r.js.Conn().RequestMsgWithContext(ctx, m)
	if err != nil {
		return err
	}
	var ack struct {
		Seq   uint64 `json:"seq"`
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return err
	}
	if ack.Error != nil || ack.Seq == 0 {
		return fmt.Errorf("atomic batch of one: %s", resp.Data)
	}
	return nil
}

// read reads every message on filter with an ordered consumer, handing
// each out as a notification of its own as a reader of the log would, and
// returns how many it read.
func (r *rawJetStream) read(ctx context.Context, filter string) (int, error) {
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		return 0, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return 0, err
	}
	msgs, err := c.Messages()
	if err != nil {
		return 0, err
	}
	// As Strata's reads do, delete the consumer at the end rather than
	// leave it to the servers for its inactive threshold: consumers piling
	// up would slow both sides.
	defer func() {
		msgs.Stop()
		if info := c.CachedInfo(); info != nil {
			s.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
		}
	}()
	page := make([]persistence.Notification, 0, CatchUpPage)
	n := 0
	for {
		m, err := msgs.Next()
		if err != nil {
			return n, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return n, err
		}
		n++
		if page = append(page, persistence.Notification{ID: int64(meta.Sequence.Stream), StoredEvent: persistence.StoredEvent{State: m.Data()}}); len(page) == CatchUpPage {
			page = make([]persistence.Notification, 0, CatchUpPage)
		}
		if meta.NumPending == 0 {
			return n, nil
		}
	}
}

func (r *rawJetStream) Scan(ctx context.Context) (int, error) { return r.read(ctx, r.subject+".>") }

func (r *rawJetStream) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	return r.read(ctx, r.aggregate(id))
}
