package dynamodb

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

var _ persistence.Replacer = (*AggregateRecorder)(nil)

// ReplaceEvents records the events in one transaction, replacing the topic
// and state of those already recorded at the same aggregate and version,
// and inserting the others. A record shares its item with the other
// records of its save, so the item is read, encoded again and written back
// on the condition that its revision has not moved; every replacement of
// an aggregate also moves a revision on its head, so that two
// replacements, or a replacement and a deletion, never both commit on
// what they read. The loser reads again. A replacement that one
// transaction cannot hold is refused with an error wrapping
// persistence.ErrNotSupported, and nothing is written (see
// docs/dynamodb.md).
func (a *AggregateRecorder) ReplaceEvents(ctx context.Context, events []persistence.StoredEvent) error {
	const op = "replace events"
	if err := a.s.begin(ctx, op, true); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	groups, err := groupEvents(op, events, nil)
	if err != nil {
		return err
	}
	if n := 2 * len(groups); n > MaxTransactionItems {
		return tooLarge(op, "replacing records of %d aggregates needs at least %d items in one DynamoDB transaction, which holds at most %d: replace those of at most %d aggregates at once", len(groups), n, MaxTransactionItems, MaxTransactionItems/2)
	}
	for attempt := 1; ; attempt++ {
		t, err := a.replacement(ctx, op, groups)
		if err != nil {
			return err
		}
		failed, raced, err := a.s.transact(ctx, op, t)
		if err != nil {
			return err
		}
		if len(failed) == 0 && !raced {
			return nil
		}
		// Every condition is on a revision read just before: a failed one
		// means that another writer changed the aggregate meanwhile.
		if attempt == maxAttempts {
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("the records kept changing during %d attempts; nothing was replaced", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}

// edit is a chunk read for a replacement, with its records decoded.
type edit struct {
	item  map[string]types.AttributeValue
	first int64 // its sort key's version
	last  int64 // lv
	evs   []event
	dirty bool
}

func (e *edit) covers(v int64) bool { return e.first <= v && v <= e.last }

// put puts ev in the chunk's records at its version, in version order.
func (e *edit) put(ev event) {
	i, found := slices.BinarySearchFunc(e.evs, ev.version, func(x event, v int64) int { return compare(x.version, v) })
	ev.nid = 0
	if found {
		e.evs[i] = ev
	} else {
		e.evs = slices.Insert(e.evs, i, ev)
	}
	e.dirty = true
}

// replacement reads what the groups' records replace and builds the
// transaction that writes them. A record at a version that a chunk spans
// goes into that chunk, so that chunks never overlap and reads by chunk
// stay in version order; records at versions no chunk spans make new
// chunks, one per gap between existing ones.
func (a *AggregateRecorder) replacement(ctx context.Context, op string, groups []*group) (*tx, error) {
	s := a.s
	t := &tx{}
	// Chunks are sized before any is added, so that one too large is
	// refused naming the aggregate whose records it holds.
	type chunkPut struct {
		it   types.TransactWriteItem
		size int
		id   uuid.UUID
	}
	var puts []chunkPut
	for _, g := range groups {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(headPK(a.purpose, a.tenant), g.id.String()), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, s.fail(op, err, false)
		}
		head := out.Item
		var edits []*edit          // existing chunks, by first version
		gaps := map[int64]*group{} // new records by the first version of the chunk below them (minInt64 for none)
		var gapOrder []int64
		var cur *edit
		for _, ev := range g.evs {
			if cur == nil || !cur.covers(ev.version) {
				below, err := a.chunkBelow(ctx, op, g.id, ev.version)
				if err != nil {
					return nil, err
				}
				cur = nil
				if below != nil {
					if i := slices.IndexFunc(edits, func(e *edit) bool { return e.first == below.first }); i >= 0 {
						below = edits[i]
					} else {
						edits = append(edits, below)
					}
					cur = below
				}
			}
			if cur != nil && cur.covers(ev.version) {
				cur.put(ev)
				continue
			}
			gap := int64(-1 << 63)
			if cur != nil {
				gap = cur.first
			}
			ng := gaps[gap]
			if ng == nil {
				ng = &group{id: g.id}
				gaps[gap] = ng
				gapOrder = append(gapOrder, gap)
			}
			ng.evs = append(ng.evs, ev)
		}

		hu, err := s.replacedHead(a.purpose, a.tenant, g, head)
		if err != nil {
			return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
		}
		t.add(role{kind: "head", group: g}, hu, 64)
		for _, e := range edits {
			if !e.dirty {
				continue
			}
			next := make(map[string]types.AttributeValue, len(e.item)+1)
			for k, v := range e.item {
				next[k] = v
			}
			next["ev"] = vB(encodeEvents(e.evs, false))
			it, err := s.rewrite(e.item, next)
			if err != nil {
				return nil, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
			}
			puts = append(puts, chunkPut{it, itemSize(next), g.id})
		}
		for _, gap := range gapOrder {
			c := s.chunk(a.purpose, a.tenant, gaps[gap], uuid.Nil, nil, "")
			puts = append(puts, chunkPut{s.putNew(c), itemSize(c), g.id})
		}
	}
	for _, p := range puts {
		if p.size > MaxItemBytes-itemMargin {
			return nil, tooLarge(op, "the records of %s that share an item with the replaced ones would take %d bytes, more than the %d bytes of one DynamoDB item: nothing was replaced", p.id, p.size, MaxItemBytes-itemMargin)
		}
		t.add(role{kind: "chunk"}, p.it, p.size)
	}
	if len(t.items) > MaxTransactionItems {
		return nil, tooLarge(op, "the replacement writes %d items, more than the %d of one DynamoDB transaction: nothing was replaced", len(t.items), MaxTransactionItems)
	}
	if t.bytes > MaxTransactionBytes-itemMargin*len(t.items) {
		return nil, tooLarge(op, "the replacement writes %d bytes (the items that hold the replaced records, whole), more than the %d bytes of one DynamoDB transaction: nothing was replaced", t.bytes, MaxTransactionBytes)
	}
	return t, nil
}

// chunkBelow reads the chunk of the aggregate with the highest first
// version at or below v, or returns nil if there is none.
func (a *AggregateRecorder) chunkBelow(ctx context.Context, op string, id uuid.UUID, v int64) (*edit, error) {
	s := a.s
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND sk <= :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(chunkPK(a.purpose, a.tenant, id)), ":v": vS(sortable(v))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
	})
	if err != nil {
		return nil, s.fail(fmt.Sprintf("%s of %s", op, id), err, false)
	}
	if len(out.Items) == 0 {
		return nil, nil
	}
	item := out.Items[0]
	e := &edit{item: item}
	corrupt := func(err error) error {
		return &persistence.Error{Op: fmt.Sprintf("%s of %s: item %s", op, id, getS(item, "sk")), Kind: persistence.ErrCorrupt, Err: err}
	}
	if e.first, err = unsortable(getS(item, "sk")); err != nil {
		return nil, corrupt(err)
	}
	if e.last, err = getN(item, "lv"); err != nil {
		return nil, corrupt(err)
	}
	if e.evs, err = decodeEvents(getB(item, "ev"), false); err != nil {
		return nil, corrupt(err)
	}
	return e, nil
}

// replacedHead returns the update of an aggregate's head for a
// replacement: its last version raised to the group's if that is higher,
// and its replacement revision rr moved, on the condition that the head is
// as it was read (or still absent). Inserts move lv, deletions and
// replacements check both, so a replacement commits only on the chunks it
// read.
func (s *shared) replacedHead(purpose, tenant string, g *group, head map[string]types.AttributeValue) (types.TransactWriteItem, error) {
	last := g.evs[len(g.evs)-1].version
	u := &types.Update{
		TableName:                 &s.table,
		Key:                       key(headPK(purpose, tenant), g.id.String()),
		UpdateExpression:          aws.String("SET lv = :lv, rr = :rr"),
		ExpressionAttributeValues: map[string]types.AttributeValue{},
	}
	if tenant != "" {
		u.UpdateExpression = aws.String("SET lv = :lv, rr = :rr, tn = :tn")
		u.ExpressionAttributeValues[":tn"] = vS(tenant)
	}
	if head == nil {
		u.ConditionExpression = aws.String("attribute_not_exists(pk)")
		u.ExpressionAttributeValues[":lv"] = vN(last)
		u.ExpressionAttributeValues[":rr"] = vN(1)
		return types.TransactWriteItem{Update: u}, nil
	}
	lv, err := getN(head, "lv")
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	rr, err := getN(head, "rr")
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	cond, vals := sameHead(head)
	u.ConditionExpression = aws.String(cond)
	for k, v := range vals {
		u.ExpressionAttributeValues[k] = v
	}
	u.ExpressionAttributeValues[":lv"] = vN(max(lv, last))
	u.ExpressionAttributeValues[":rr"] = vN(rr + 1)
	return types.TransactWriteItem{Update: u}, nil
}

// sameHead returns the condition that a head is as it was read: the same
// last version and the same replacement revision.
func sameHead(head map[string]types.AttributeValue) (string, map[string]types.AttributeValue) {
	vals := map[string]types.AttributeValue{":headlv": head["lv"]}
	if rr, ok := head["rr"]; ok {
		vals[":headrr"] = rr
		return "lv = :headlv AND rr = :headrr", vals
	}
	return "lv = :headlv AND attribute_not_exists(rr)", vals
}
