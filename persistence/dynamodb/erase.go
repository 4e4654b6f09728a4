package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// eraseAttempts bounds the attempts of a deletion that keeps meeting
// concurrent saves of what it deletes.
const eraseAttempts = 20

// DeleteAggregate deletes the aggregate's events, commit records, heads
// and records of every purpose (snapshots) in the factory's tenant, and
// takes its events out of the log items they are in, in one transaction.
// An aggregate with more items than one transaction holds is refused
// with an error wrapping persistence.ErrNotSupported, and nothing is
// deleted (see docs/dynamodb.md).
func (f *Factory) DeleteAggregate(ctx context.Context, id uuid.UUID) (bool, error) {
	op := fmt.Sprintf("delete aggregate %s", id)
	if err := f.s.begin(ctx, op, true); err != nil {
		return false, err
	}
	for attempt := 1; ; attempt++ {
		t, had, err := f.deletion(ctx, op, id)
		if err != nil || !had {
			return false, err
		}
		if len(t.items) > MaxTransactionItems {
			return false, tooLarge(op, "deleting it takes %d items, more than the %d of one DynamoDB transaction: nothing was deleted", len(t.items), MaxTransactionItems)
		}
		if f.s.beforeErase != nil {
			f.s.beforeErase()
		}
		failed, raced, err := f.s.transact(ctx, op, t)
		if err != nil {
			return false, err
		}
		if len(failed) == 0 && !raced {
			return true, nil
		}
		if attempt == eraseAttempts {
			return false, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("the aggregate kept changing during %d attempts; nothing was deleted", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return false, &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}

// deletion builds the transaction that deletes an aggregate, each item on
// the condition that it is as it was read, so that a save that lands
// meanwhile makes the deletion start again rather than leave part of the
// save.
func (f *Factory) deletion(ctx context.Context, op string, id uuid.UUID) (*tx, bool, error) {
	s := f.s
	purposes := []string{eventsPurpose}
	err := s.query(ctx, op, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(pkPurpose)},
	}, func(item map[string]types.AttributeValue) error {
		purposes = append(purposes, getS(item, "sk"))
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	t := &tx{}
	had := false
	for _, p := range purposes {
		out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(headPK(p, f.tenant), id.String()), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, false, s.fail(op, err, false)
		}
		if out.Item == nil {
			continue
		}
		had = true
		// The head as read: a save moves lv, a replacement rr, and either
		// may have written a chunk this deletion did not read.
		cond, vals := sameHead(out.Item)
		t.add(role{kind: "head"}, types.TransactWriteItem{Delete: &types.Delete{
			TableName: &s.table, Key: key(headPK(p, f.tenant), id.String()),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
		}}, 64)
		err = s.query(ctx, op, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(chunkPK(p, f.tenant, id))},
			ProjectionExpression:      aws.String("pk, sk, ls"),
		}, func(item map[string]types.AttributeValue) error {
			t.add(role{kind: "chunk"}, types.TransactWriteItem{Delete: &types.Delete{
				TableName: &s.table, Key: key(getS(item, "pk"), getS(item, "sk")), ConditionExpression: aws.String("attribute_exists(pk)"),
			}}, 64)
			if ls := getS(item, "ls"); ls != "" {
				w, err := s.withoutAggregate(ctx, op, ls, id)
				if err != nil {
					return err
				}
				t.add(role{kind: "log"}, w, 64)
			}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
	}
	err = s.query(ctx, op, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": vS(commitPK(f.tenant, id))},
		ProjectionExpression:      aws.String("pk, sk"),
	}, func(item map[string]types.AttributeValue) error {
		t.add(role{kind: "commit"}, types.TransactWriteItem{Delete: &types.Delete{TableName: &s.table, Key: key(getS(item, "pk"), getS(item, "sk"))}}, 64)
		return nil
	})
	return t, had, err
}

// withoutAggregate returns the rewrite of a log item without the events
// of one aggregate. The item stays, even empty: its notification IDs are
// never given again, and the next save checks that the last save's log
// item exists.
func (s *shared) withoutAggregate(ctx context.Context, op, sk string, id uuid.UUID) (types.TransactWriteItem, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pkLog, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return types.TransactWriteItem{}, s.fail(op, err, false)
	}
	item := out.Item
	if item == nil {
		return types.TransactWriteItem{}, &persistence.Error{Op: op, Kind: persistence.ErrInternal, Err: fmt.Errorf("log item %s of a recorded event is missing", sk)}
	}
	evs, err := decodeEvents(getB(item, "ev"), true)
	if err != nil {
		return types.TransactWriteItem{}, &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
	}
	kept := evs[:0]
	for _, e := range evs {
		if e.id != id {
			kept = append(kept, e)
		}
	}
	next := map[string]types.AttributeValue{}
	for k, v := range item {
		next[k] = v
	}
	if len(kept) == 0 {
		for _, k := range []string{"ev", "tn", "cid", "hdr"} {
			delete(next, k)
		}
	} else {
		next["ev"] = vB(encodeEvents(kept, true))
	}
	return s.rewrite(item, next)
}

// rewrite puts next in place of item on the condition that item has not
// changed since it was read: its revision rv is moved on every rewrite.
// An item never rewritten may have no revision (chunks are written
// without one), and must still have none, and exist.
func (s *shared) rewrite(item, next map[string]types.AttributeValue) (types.TransactWriteItem, error) {
	if _, ok := item["rv"]; !ok {
		next["rv"] = vN(1)
		return types.TransactWriteItem{Put: &types.Put{
			TableName: &s.table, Item: next,
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(rv)"),
		}}, nil
	}
	rv, err := getN(item, "rv")
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	next["rv"] = vN(rv + 1)
	return types.TransactWriteItem{Put: &types.Put{
		TableName: &s.table, Item: next,
		ConditionExpression:       aws.String("rv = :rv"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rv": vN(rv)},
	}}, nil
}

// query runs a consistent query of the table, every page of it, calling
// each for every item.
func (s *shared) query(ctx context.Context, op string, in *dynamodb.QueryInput, each func(map[string]types.AttributeValue) error) error {
	in.TableName = &s.table
	in.ConsistentRead = aws.Bool(true)
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.fail(op, err, false)
		}
		for _, item := range page.Items {
			if err := each(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// PurgeTenant deletes everything of the factory's tenant (events, commit
// records, tracking records, records of every purpose) and empties its log
// items, in one transaction. A tenant with more items than one transaction
// holds is refused with an error wrapping persistence.ErrNotSupported, and
// nothing is deleted (see docs/dynamodb.md). It is refused for the
// default tenant.
func (f *Factory) PurgeTenant(ctx context.Context) error {
	op := fmt.Sprintf("purge tenant %q", f.tenant)
	if err := f.s.begin(ctx, op, true); err != nil {
		return err
	}
	if f.tenant == "" {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("the default tenant cannot be purged")}
	}
	s := f.s
	for attempt := 1; ; attempt++ {
		t := &tx{}
		p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{
			TableName:                 &s.table,
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String("tn = :tn"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":tn": vS(f.tenant)},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return s.fail(op, err, false)
			}
			for _, item := range page.Items {
				if getS(item, "pk") == pkLog {
					next := key(pkLog, getS(item, "sk"))
					next["first"] = item["first"]
					w, err := s.rewrite(item, next)
					if err != nil {
						return &persistence.Error{Op: op, Kind: persistence.ErrCorrupt, Err: err}
					}
					t.add(role{kind: "log"}, w, 64)
					continue
				}
				del := &types.Delete{
					TableName: &s.table, Key: key(getS(item, "pk"), getS(item, "sk")), ConditionExpression: aws.String("attribute_exists(pk)"),
				}
				if strings.HasPrefix(getS(item, "pk"), "h|") {
					// A head as read, so that a chunk written since the
					// scan makes the purge scan again (see deletion).
					cond, vals := sameHead(item)
					del.ConditionExpression, del.ExpressionAttributeValues = aws.String(cond), vals
				}
				t.add(role{kind: "item"}, types.TransactWriteItem{Delete: del}, 64)
			}
		}
		if len(t.items) == 0 {
			return nil
		}
		if len(t.items) > MaxTransactionItems {
			return tooLarge(op, "the tenant has %d items, more than the %d of one DynamoDB transaction: nothing was deleted", len(t.items), MaxTransactionItems)
		}
		if s.beforeErase != nil {
			s.beforeErase()
		}
		failed, raced, err := s.transact(ctx, op, t)
		if err != nil {
			return err
		}
		if len(failed) == 0 && !raced {
			return nil
		}
		if attempt == eraseAttempts {
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: fmt.Errorf("the tenant kept changing during %d attempts; nothing was deleted", attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
	}
}
