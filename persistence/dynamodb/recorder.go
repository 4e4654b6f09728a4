package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// Recorder is the process recorder of one tenant of an application (its
// application recorder is the same without tracking records). It is safe
// for concurrent use.
type Recorder struct {
	s        *shared
	tenant   string
	tracking bool
}

var _ persistence.ProcessRecorder = (*Recorder)(nil)

// AggregateRecorder is the recorder of one purpose (snapshots) of one
// tenant. Its records have no notification IDs and no commits.
type AggregateRecorder struct {
	s       *shared
	tenant  string
	purpose string
}

var (
	_ persistence.AggregateRecorder = (*AggregateRecorder)(nil)
	_ persistence.Lister            = (*AggregateRecorder)(nil)
)

// group is the events of one aggregate in one save, in version order.
type group struct {
	id   uuid.UUID
	evs  []event
	size int
}

// groupEvents splits a save by aggregate, in the order the aggregates
// first appear, and refuses two events at one version.
func groupEvents(op string, events []persistence.StoredEvent, nids []int64) ([]*group, error) {
	byID := map[uuid.UUID]*group{}
	var groups []*group
	for i, e := range events {
		g := byID[e.OriginatorID]
		if g == nil {
			g = &group{id: e.OriginatorID}
			byID[e.OriginatorID] = g
			groups = append(groups, g)
		}
		var nid int64
		if nids != nil {
			nid = nids[i]
		}
		g.evs = append(g.evs, event{id: e.OriginatorID, version: e.OriginatorVersion, nid: nid, topic: e.Topic, state: e.State})
		g.size += len(e.Topic) + len(e.State) + 40
	}
	for _, g := range groups {
		slices.SortStableFunc(g.evs, func(a, b event) int { return compare(a.version, b.version) })
		for i := 1; i < len(g.evs); i++ {
			if g.evs[i].version == g.evs[i-1].version {
				return nil, &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
					Err: fmt.Errorf("two events of %s at version %d in one save", g.id, g.evs[i].version)}
			}
		}
	}
	return groups, nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// role says what an item of a transaction is for, to read DynamoDB's
// cancellation reasons.
type role struct {
	kind  string // "counter", "tenant", "logcheck", "log", "tracking", "commit", "head", "chunk"
	group *group
}

// tx is a transaction being built.
type tx struct {
	items []types.TransactWriteItem
	roles []role
	bytes int
}

func (t *tx) add(r role, it types.TransactWriteItem, size int) {
	t.items = append(t.items, it)
	t.roles = append(t.roles, r)
	t.bytes += size
}

func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		default:
			n += 8
		}
	}
	return n
}

// tooLarge refuses a save that one DynamoDB transaction cannot hold.
func tooLarge(op string, format string, args ...any) error {
	return &persistence.Error{Op: op, Kind: persistence.ErrNotSupported, Err: fmt.Errorf(format, args...)}
}

// chunk returns the item of a group's events of one purpose.
func (s *shared) chunk(purpose, tenant string, g *group, commit uuid.UUID, headers []byte, logSK string) map[string]types.AttributeValue {
	it := key(chunkPK(purpose, tenant, g.id), sortable(g.evs[0].version))
	it["lv"] = vN(g.evs[len(g.evs)-1].version)
	it["ev"] = vB(encodeEvents(g.evs, false))
	if commit != uuid.Nil {
		it["cid"] = vB(commit[:])
	}
	if len(headers) > 0 {
		it["hdr"] = vB(headers)
	}
	if logSK != "" {
		it["ls"] = vS(logSK)
	}
	if tenant != "" {
		it["tn"] = vS(tenant)
	}
	return it
}

// head returns the update of a group's aggregate head: the last recorded
// version, which the group's first version must be above. This is the
// optimistic concurrency check, and it makes versions of an aggregate
// increase from save to save.
func (s *shared) head(purpose, tenant string, g *group) types.TransactWriteItem {
	u := &types.Update{
		TableName:           &s.table,
		Key:                 key(headPK(purpose, tenant), g.id.String()),
		UpdateExpression:    aws.String("SET lv = :last"),
		ConditionExpression: aws.String("attribute_not_exists(lv) OR lv < :first"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":last": vN(g.evs[len(g.evs)-1].version), ":first": vN(g.evs[0].version),
		},
	}
	if tenant != "" {
		u.UpdateExpression = aws.String("SET lv = :last, tn = :tn")
		u.ExpressionAttributeValues[":tn"] = vS(tenant)
	}
	return types.TransactWriteItem{Update: u}
}

func (s *shared) putNew(item map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}}
}

// transact runs a transaction, and returns the roles of the items whose
// conditions failed, whether it lost a race to another transaction (so
// that it can simply run again), or an error.
func (s *shared) transact(ctx context.Context, op string, t *tx) (failed []role, raced bool, err error) {
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: t.items})
	if err == nil {
		return nil, false, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		var tc *types.TransactionConflictException
		if errors.As(err, &tc) {
			return nil, true, nil
		}
		return nil, false, s.fail(op, err, true)
	}
	if len(tce.CancellationReasons) != len(t.items) {
		return nil, false, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("transaction cancelled with %d reasons for %d items: %w", len(tce.CancellationReasons), len(t.items), err)}
	}
	for i, r := range tce.CancellationReasons {
		switch code := aws.ToString(r.Code); code {
		case "", "None":
		case "ConditionalCheckFailed":
			failed = append(failed, t.roles[i])
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded":
			raced = true
		default:
			return nil, false, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("item %d (%s): %s: %s", i, t.roles[i].kind, code, aws.ToString(r.Message))}
		}
	}
	return failed, raced, nil
}

// InsertEvents records the events, their commit, their notifications and
// the tracking record, if any, in one transaction, and returns the events'
// notification IDs. A save that one transaction cannot hold is refused
// with an error wrapping persistence.ErrNotSupported, before anything is
// written (see docs/dynamodb.md for the limits).
func (r *Recorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := r.s.begin(ctx, op, true); err != nil {
		return nil, err
	}
	if err := persistence.CheckCommit(op, events); err != nil {
		return nil, err
	}
	cfg := persistence.NewInsertConfig(opts)
	if cfg.Tracking != nil && !r.tracking {
		return nil, errNoTracking(op)
	}
	if len(events) == 0 {
		if cfg.Tracking != nil {
			return nil, r.insertTracking(ctx, *cfg.Tracking)
		}
		return nil, nil
	}
	nids := make([]int64, len(events))
	groups, err := groupEvents(op, events, nids)
	if err != nil {
		return nil, err
	}
	commit := events[0].CommitID
	headers := persistence.EncodeHeaders(events[0].Headers)
	items := 4 + 2*len(groups) // counter, tenant max, log check, log; head and chunk per aggregate
	if commit != uuid.Nil {
		items += len(groups)
	}
	if cfg.Tracking != nil {
		items++
	}
	if items > MaxTransactionItems {
		per := 2
		if commit != uuid.Nil {
			per = 3
		}
		return nil, tooLarge(op, "a save of %d aggregates needs %d items in one DynamoDB transaction, which holds at most %d: save at most %d aggregates at once",
			len(groups), items, MaxTransactionItems, (MaxTransactionItems-5)/per)
	}
	for attempt := 1; ; attempt++ {
		// The saves of one process queue for the counter rather than race
		// for it: only one of them could win each round, and DynamoDB
		// bills the transactions that lose. Other processes still race,
		// and lose cleanly. Queued, each save can take the counter as the
		// one before it left it, without reading it (see shared.known).
		r.s.writeMu.Lock()
		ids, retry, err := r.tryInsert(ctx, op, events, groups, commit, headers, cfg.Tracking)
		r.s.writeMu.Unlock()
		if err != nil || !retry {
			return ids, err
		}
		if attempt == maxAttempts {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("lost the race for the notification counter %d times; nothing was recorded", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}

// counter reads the notification counter: the last notification ID given
// and the sort key of the last save's log item.
func (s *shared) counter(ctx context.Context, op string) (int64, string, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pkMeta, skCounter), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, "", s.fail(op+": read the notification counter", err, false)
	}
	n, err := getN(out.Item, "n")
	if err != nil {
		return 0, "", &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
	}
	return n, getS(out.Item, "last"), nil
}

// tryInsert makes one attempt at a save: it takes the counter as this
// process last knew it, or reads it, and writes everything on the
// condition that the counter has not moved. It returns retry when another
// save took the counter first. The caller holds s.writeMu.
func (r *Recorder) tryInsert(ctx context.Context, op string, events []persistence.StoredEvent, groups []*group, commit uuid.UUID, headers []byte, tracking *persistence.Tracking) ([]int64, bool, error) {
	s := r.s
	if !s.known {
		n, last, err := s.counter(ctx, op)
		if err != nil {
			return nil, false, err
		}
		s.n, s.last, s.known = n, last, true
	}
	n, last := s.n, s.last
	ids := make([]int64, len(events))
	for i := range events {
		ids[i] = n + 1 + int64(i)
	}
	// The groups' events get their notification IDs in the save's order.
	logEvents := make([]event, len(events))
	for _, g := range groups {
		byVersion := map[int64]int64{}
		for i, e := range events {
			if e.OriginatorID == g.id {
				byVersion[e.OriginatorVersion] = ids[i]
			}
		}
		for i := range g.evs {
			g.evs[i].nid = byVersion[g.evs[i].version]
		}
	}
	for i, e := range events {
		logEvents[i] = event{id: e.OriginatorID, version: e.OriginatorVersion, nid: ids[i], topic: e.Topic, state: e.State}
	}
	top := ids[len(ids)-1]
	logSK := sortable(top)

	var t tx
	counter := &types.Update{
		TableName:                 &s.table,
		Key:                       key(pkMeta, skCounter),
		UpdateExpression:          aws.String("SET n = :next, #last = :sk"),
		ExpressionAttributeNames:  map[string]string{"#last": "last"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": vN(top), ":sk": vS(logSK)},
	}
	if n == 0 {
		counter.ConditionExpression = aws.String("attribute_not_exists(n)")
	} else {
		counter.ConditionExpression = aws.String("n = :n")
		counter.ExpressionAttributeValues[":n"] = vN(n)
	}
	t.add(role{kind: "counter"}, types.TransactWriteItem{Update: counter}, 64)
	tenantMax := &types.Update{
		TableName:                 &s.table,
		Key:                       key(pkMeta, tenantMaxSK(r.tenant)),
		UpdateExpression:          aws.String("SET n = :next"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": vN(top)},
	}
	if r.tenant != "" {
		tenantMax.UpdateExpression = aws.String("SET n = :next, tn = :tn")
		tenantMax.ExpressionAttributeValues[":tn"] = vS(r.tenant)
	}
	t.add(role{kind: "tenant"}, types.TransactWriteItem{Update: tenantMax}, 64+len(r.tenant))
	if last != "" {
		// The last save's log item must be visible before this one's
		// can be: see "Why readers miss nothing" in docs/dynamodb.md.
		t.add(role{kind: "logcheck"}, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: &s.table, Key: key(pkLog, last), ConditionExpression: aws.String("attribute_exists(pk)"),
		}}, 32)
	}
	logItem := key(pkLog, logSK)
	logItem["first"] = vN(ids[0])
	logItem["ev"] = vB(encodeEvents(logEvents, true))
	logItem["rv"] = vN(0)
	if commit != uuid.Nil {
		logItem["cid"] = vB(commit[:])
	}
	if len(headers) > 0 {
		logItem["hdr"] = vB(headers)
	}
	if r.tenant != "" {
		logItem["tn"] = vS(r.tenant)
	}
	if sz := itemSize(logItem); sz > MaxItemBytes-itemMargin {
		return nil, false, tooLarge(op, "the %d events of the save take %d bytes, more than the %d bytes of one DynamoDB item, which holds a save's notifications", len(events), sz, MaxItemBytes-itemMargin)
	}
	t.add(role{kind: "log"}, s.putNew(logItem), itemSize(logItem))
	if tracking != nil {
		t.add(role{kind: "tracking"}, s.putNew(s.trackingItem(r.tenant, *tracking)), 64)
	}
	if commit != uuid.Nil {
		for _, g := range groups {
			c := key(commitPK(r.tenant, g.id), commit.String())
			if r.tenant != "" {
				c["tn"] = vS(r.tenant)
			}
			t.add(role{kind: "commit", group: g}, s.putNew(c), itemSize(c))
		}
	}
	for _, g := range groups {
		t.add(role{kind: "head", group: g}, s.head(eventsPurpose, r.tenant, g), 64)
		c := s.chunk(eventsPurpose, r.tenant, g, commit, headers, logSK)
		if sz := itemSize(c); sz > MaxItemBytes-itemMargin {
			return nil, false, tooLarge(op, "the %d events of aggregate %s in the save take %d bytes, more than the %d bytes of one DynamoDB item", len(g.evs), g.id, sz, MaxItemBytes-itemMargin)
		}
		t.add(role{kind: "chunk", group: g}, s.putNew(c), itemSize(c))
	}
	if t.bytes > MaxTransactionBytes-itemMargin*len(t.items) {
		return nil, false, tooLarge(op, "the save takes %d bytes (its events are kept twice: by aggregate and in the log), more than the %d bytes of one DynamoDB transaction", t.bytes, MaxTransactionBytes)
	}
	// Until the transaction's outcome says where the counter is, the
	// process does not know it: a write of unknown outcome may have
	// moved it.
	s.known = false
	failed, raced, err := s.transact(ctx, op, &t)
	if err != nil {
		return nil, false, err
	}
	if len(failed) == 0 && !raced {
		s.n, s.last, s.known = top, logSK, true
		return ids, false, nil
	}
	if !raced && !slices.ContainsFunc(failed, func(f role) bool { return f.kind == "counter" || f.kind == "logcheck" || f.kind == "log" }) {
		// The save failed on a condition of its own (a conflict on an
		// aggregate, a commit or tracking record already recorded), and
		// the counter's held: it is still where this process left it. Were
		// the counter's failure not reported, the next save fails on it
		// and reads it.
		s.n, s.last, s.known = n, last, true
	}
	cerr := s.classify(ctx, op, r.tenant, failed, groups, commit, tracking)
	return nil, cerr == nil, cerr
}

// classify turns the failed conditions of a cancelled save into its error,
// or nil if the save only lost a race and may run again.
func (s *shared) classify(ctx context.Context, op, tenant string, failed []role, groups []*group, commit uuid.UUID, tracking *persistence.Tracking) error {
	final := false
	for _, f := range failed {
		if f.kind != "counter" && f.kind != "logcheck" && f.kind != "log" && f.kind != "tenant" {
			final = true
		}
	}
	if !final {
		return nil
	}
	if commit != uuid.Nil {
		// DynamoDB may report only some of the failed conditions, so the
		// commit records are read rather than taken from the reasons.
		var have, lack []uuid.UUID
		for _, g := range groups {
			out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(commitPK(tenant, g.id), commit.String()), ConsistentRead: aws.Bool(true)})
			if err != nil {
				return s.fail(op+": read commit records", err, false)
			}
			if out.Item != nil {
				have = append(have, g.id)
			} else {
				lack = append(lack, g.id)
			}
		}
		switch {
		case len(have) > 0 && len(lack) == 0:
			return &persistence.Error{Op: op, Kind: persistence.ErrAlreadyCommitted, Err: fmt.Errorf("commit %s is recorded", commit)}
		case len(have) > 0:
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("commit %s is recorded for aggregate %s but not for %s: a commit ID names one save", commit, have[0], lack[0])}
		}
	}
	for _, f := range failed {
		switch f.kind {
		case "head", "chunk":
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("aggregate %s has an event at version %d or later already", f.group.id, f.group.evs[0].version)}
		case "tracking":
			return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity,
				Err: fmt.Errorf("tracking record %s %d is already recorded", tracking.ApplicationName, tracking.NotificationID)}
		}
	}
	return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("a condition of the save failed: %s", failed[0].kind)}
}

func errNoTracking(op string) error {
	return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("this recorder does not record tracking records")}
}

func (s *shared) trackingItem(tenant string, t persistence.Tracking) map[string]types.AttributeValue {
	it := key(trackingPK(t.ApplicationName), sortable(t.NotificationID))
	if tenant != "" {
		it["tn"] = vS(tenant)
	}
	return it
}

func (r *Recorder) insertTracking(ctx context.Context, t persistence.Tracking) error {
	const op = "insert tracking record"
	_, err := r.s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &r.s.table, Item: r.s.trackingItem(r.tenant, t), ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &persistence.Error{Op: op, Kind: persistence.ErrIntegrity, Err: fmt.Errorf("tracking record %s %d is already recorded", t.ApplicationName, t.NotificationID)}
	}
	if err != nil {
		return r.s.fail(op, err, true)
	}
	return nil
}

// SelectEvents returns one aggregate's events as the query asks.
func (r *Recorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return r.s.selectEvents(ctx, eventsPurpose, r.tenant, id, q)
}

// selectEvents reads the chunks of an aggregate in version order (or the
// reverse), every page of them, until the query's limit.
func (s *shared) selectEvents(ctx context.Context, purpose, tenant string, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	const op = "select events"
	if err := s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	out := []persistence.StoredEvent{}
	if q.Gt != nil && q.Lte != nil && *q.Lte <= *q.Gt {
		return out, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(chunkPK(purpose, tenant, id))},
		ScanIndexForward:          aws.Bool(!q.Desc),
	}
	if q.Lte != nil {
		in.KeyConditionExpression = aws.String("pk = :pk AND sk <= :lte")
		in.ExpressionAttributeValues[":lte"] = vS(sortable(*q.Lte))
	}
	if q.Gt != nil {
		in.FilterExpression = aws.String("lv > :gt")
		in.ExpressionAttributeValues[":gt"] = vN(*q.Gt)
	}
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail(fmt.Sprintf("%s of %s", op, id), err, false)
		}
		for _, item := range page.Items {
			evs, err := decodeEvents(getB(item, "ev"), false)
			if err != nil {
				return nil, &persistence.Error{Op: fmt.Sprintf("%s of %s", op, id), Kind: persistence.ErrCorrupt, Err: err}
			}
			var c uuid.UUID
			copy(c[:], getB(item, "cid"))
			h, err := persistence.DecodeHeaders(getB(item, "hdr"))
			if err != nil {
				return nil, &persistence.Error{Op: fmt.Sprintf("%s of %s", op, id), Kind: persistence.ErrCorrupt, Err: err}
			}
			if q.Desc {
				slices.Reverse(evs)
			}
			for _, e := range evs {
				if q.Gt != nil && e.version <= *q.Gt || q.Lte != nil && e.version > *q.Lte {
					continue
				}
				out = append(out, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: e.version, Topic: e.topic, State: e.state, CommitID: c, Headers: h})
				if q.Limit > 0 && len(out) == q.Limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// SelectNotifications returns notifications from q.Start in order: it
// reads the log items whose last notification ID is at least q.Start,
// page after page, until it has q.Limit notifications or passes q.Stop.
func (r *Recorder) SelectNotifications(ctx context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	const op = "select notifications"
	if err := r.s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("limit %d is not positive", q.Limit)}
	}
	out := []persistence.Notification{}
	if q.Stop > 0 && q.Stop < q.Start {
		return out, nil
	}
	s := r.s
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND sk >= :start"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(pkLog), ":start": vS(sortable(max(q.Start, 0)))},
		Limit:                     aws.Int32(int32(min(max(q.Limit, 16), 1000))),
	}
	switch {
	case q.AllTenants:
		in.FilterExpression = aws.String("attribute_exists(ev)")
	case r.tenant == "":
		in.FilterExpression = aws.String("attribute_exists(ev) AND attribute_not_exists(tn)")
	default:
		in.FilterExpression = aws.String("attribute_exists(ev) AND tn = :tn")
		in.ExpressionAttributeValues[":tn"] = vS(r.tenant)
	}
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail(op, err, false)
		}
		for _, item := range page.Items {
			first, err := getN(item, "first")
			if err != nil {
				return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
			}
			if q.Stop > 0 && first > q.Stop {
				return out, nil
			}
			evs, err := decodeEvents(getB(item, "ev"), true)
			if err != nil {
				return nil, &persistence.Error{Op: fmt.Sprintf("%s: log item %s", op, getS(item, "sk")), Kind: persistence.ErrCorrupt, Err: err}
			}
			var c uuid.UUID
			copy(c[:], getB(item, "cid"))
			h, err := persistence.DecodeHeaders(getB(item, "hdr"))
			if err != nil {
				return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
			}
			tn := getS(item, "tn")
			for _, e := range evs {
				if e.nid < q.Start || q.Stop > 0 && e.nid > q.Stop || len(q.Topics) > 0 && !slices.Contains(q.Topics, e.topic) {
					continue
				}
				out = append(out, persistence.Notification{ID: e.nid, Tenant: tn, StoredEvent: persistence.StoredEvent{
					OriginatorID: e.id, OriginatorVersion: e.version, Topic: e.topic, State: e.state, CommitID: c, Headers: h,
				}})
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// MaxNotificationID returns the highest notification ID given to the
// recorder's tenant, or 0.
func (r *Recorder) MaxNotificationID(ctx context.Context) (int64, error) {
	const op = "max notification ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return 0, err
	}
	out, err := r.s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.s.table, Key: key(pkMeta, tenantMaxSK(r.tenant)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, r.s.fail(op, err, false)
	}
	n, err := getN(out.Item, "n")
	if err != nil {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
	}
	return n, nil
}

// MaxTrackingID returns the highest notification ID recorded for the
// upstream application, in any tenant, or 0.
func (r *Recorder) MaxTrackingID(ctx context.Context, app string) (int64, error) {
	const op = "max tracking ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return 0, err
	}
	out, err := r.s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &r.s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(trackingPK(app))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return 0, r.s.fail(op, err, false)
	}
	if len(out.Items) == 0 {
		return 0, nil
	}
	n, err := unsortable(getS(out.Items[0], "sk"))
	if err != nil {
		return 0, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
	}
	return n, nil
}

// HasTrackingID reports whether the notification ID was recorded for the
// upstream application, in any tenant.
func (r *Recorder) HasTrackingID(ctx context.Context, app string, id int64) (bool, error) {
	const op = "has tracking ID"
	if err := r.s.begin(ctx, op, false); err != nil {
		return false, err
	}
	out, err := r.s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.s.table, Key: key(trackingPK(app), sortable(id)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, r.s.fail(op, err, false)
	}
	return out.Item != nil, nil
}

// InsertEvents records the events atomically: for each aggregate, its
// events in one item and its head, in one transaction. It refuses a
// tracking record: an aggregate recorder keeps none.
func (a *AggregateRecorder) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	const op = "insert events"
	if err := a.s.begin(ctx, op, true); err != nil {
		return nil, err
	}
	if persistence.NewInsertConfig(opts).Tracking != nil {
		return nil, errNoTracking(op)
	}
	if len(events) == 0 {
		return nil, nil
	}
	groups, err := groupEvents(op, events, nil)
	if err != nil {
		return nil, err
	}
	if n := 2 * len(groups); n > MaxTransactionItems {
		return nil, tooLarge(op, "a save of %d aggregates needs %d items in one DynamoDB transaction, which holds at most %d: save at most %d aggregates at once", len(groups), n, MaxTransactionItems, MaxTransactionItems/2)
	}
	var t tx
	for _, g := range groups {
		t.add(role{kind: "head", group: g}, a.s.head(a.purpose, a.tenant, g), 64)
		c := a.s.chunk(a.purpose, a.tenant, g, uuid.Nil, nil, "")
		if sz := itemSize(c); sz > MaxItemBytes-itemMargin {
			return nil, tooLarge(op, "the %d records of %s in the save take %d bytes, more than the %d bytes of one DynamoDB item", len(g.evs), g.id, sz, MaxItemBytes-itemMargin)
		}
		t.add(role{kind: "chunk", group: g}, a.s.putNew(c), sz(c))
	}
	if t.bytes > MaxTransactionBytes-itemMargin*len(t.items) {
		return nil, tooLarge(op, "the save takes %d bytes, more than the %d bytes of one DynamoDB transaction", t.bytes, MaxTransactionBytes)
	}
	for attempt := 1; ; attempt++ {
		failed, raced, err := a.s.transact(ctx, op, &t)
		if err != nil {
			return nil, err
		}
		if len(failed) == 0 && !raced {
			return nil, nil
		}
		if err := a.s.classify(ctx, op, a.tenant, failed, groups, uuid.Nil, nil); err != nil {
			return nil, err
		}
		if attempt == maxAttempts {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("lost a race %d times; nothing was recorded", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}

func sz(item map[string]types.AttributeValue) int { return itemSize(item) }

// SelectEvents returns one aggregate's records as the query asks.
func (a *AggregateRecorder) SelectEvents(ctx context.Context, id uuid.UUID, q persistence.EventQuery) ([]persistence.StoredEvent, error) {
	return a.s.selectEvents(ctx, a.purpose, a.tenant, id, q)
}

// Originators yields the IDs of the aggregates the recorder's tenant has
// records of, reading every page of their heads.
func (a *AggregateRecorder) Originators(ctx context.Context) iter.Seq2[uuid.UUID, error] {
	return func(yield func(uuid.UUID, error) bool) {
		const op = "list aggregates"
		if err := a.s.begin(ctx, op, false); err != nil {
			yield(uuid.Nil, err)
			return
		}
		p := dynamodb.NewQueryPaginator(a.s.client, &dynamodb.QueryInput{
			TableName:                 &a.s.table,
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(headPK(a.purpose, a.tenant))},
			ProjectionExpression:      aws.String("sk"),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(uuid.Nil, a.s.fail(op, err, false))
				return
			}
			for _, item := range page.Items {
				id, err := uuid.Parse(getS(item, "sk"))
				if err != nil {
					yield(uuid.Nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err})
					return
				}
				if !yield(id, nil) {
					return
				}
			}
		}
	}
}
