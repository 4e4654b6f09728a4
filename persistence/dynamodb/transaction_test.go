package dynamodb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
)

// TestACancelledTransactionWritesNothing checks the store's ground: a
// transaction whose item k fails leaves the items before k as they were,
// whether k's condition fails or its write is refused. The recorder's
// saves and deletions rely on it, and the emulator runs transactions in
// its own way (internal/awstest/motoserver.py), so it is checked here
// directly rather than through a save.
func TestACancelledTransactionWritesNothing(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	c, table := f.Client(), f.Table()
	k := func(pk, sk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
	}
	with := func(item map[string]types.AttributeValue, name, value string) map[string]types.AttributeValue {
		item[name] = &types.AttributeValueMemberS{Value: value}
		return item
	}
	for _, it := range []map[string]types.AttributeValue{with(k("x", "old"), "v", "1"), with(k("x", "text"), "s", "a string")} {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	// The first items overwrite an item, create one and update another
	// that does not exist: each a different way of writing.
	first := func() []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Put: &types.Put{TableName: &table, Item: with(k("x", "old"), "v", "2")}},
			{Put: &types.Put{TableName: &table, Item: with(k("x", "new"), "v", "1"), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &types.Update{TableName: &table, Key: k("x", "updated"), UpdateExpression: aws.String("SET v = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "1"}}}},
		}
	}
	cases := []struct {
		name  string
		last  types.TransactWriteItem
		check func(t *testing.T, err error)
	}{
		{"a condition fails", types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName: &table, Key: k("x", "missing"), ConditionExpression: aws.String("attribute_exists(pk)"),
		}}, func(t *testing.T, err error) {
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) {
				t.Fatalf("got %v, want a TransactionCanceledException", err)
			}
			want := []string{"None", "None", "None", "ConditionalCheckFailed"}
			if len(tce.CancellationReasons) != len(want) {
				t.Fatalf("%d cancellation reasons for %d items", len(tce.CancellationReasons), len(want))
			}
			for i, r := range tce.CancellationReasons {
				if aws.ToString(r.Code) != want[i] {
					t.Errorf("item %d: reason %q, want %q", i, aws.ToString(r.Code), want[i])
				}
			}
		}},
		{"a write is refused", types.TransactWriteItem{Update: &types.Update{
			TableName: &table, Key: k("x", "text"), UpdateExpression: aws.String("SET s = s + :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		}}, func(t *testing.T, err error) {
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
				t.Fatalf("adding a number to a string: got %v, want a ValidationException", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(first(), tc.last)})
			tc.check(t, err)
			get := func(sk string) map[string]types.AttributeValue {
				out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: k("x", sk), ConsistentRead: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				return out.Item
			}
			if v := attr(get("old"), "v"); v != "1" {
				t.Errorf("the overwritten item has v=%q, want %q as before", v, "1")
			}
			if s := attr(get("text"), "s"); s != "a string" {
				t.Errorf("the item of the last write has s=%q, want %q as before", s, "a string")
			}
			for _, sk := range []string{"new", "updated"} {
				if it := get(sk); it != nil {
					t.Errorf("item %s was written: v=%q", sk, attr(it, "v"))
				}
			}
		})
	}
	// The same items without the failing one are all written: the cases
	// above failed for their last item only.
	if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: first()}); err != nil {
		t.Fatal(err)
	}
	for _, sk := range []string{"new", "updated"} {
		out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: k("x", sk), ConsistentRead: aws.Bool(true)})
		if err != nil || out.Item == nil {
			t.Fatalf("item %s: %v %v", sk, out, err)
		}
	}
}

// attr returns a string attribute of an item, or "" if it has none.
func attr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// TestATransactionRunsOncePerToken checks what a save retried by the SDK
// relies on: a transaction sent again with the same client request token,
// after its answer was lost, succeeds without writing again, and the
// token cannot stand for other items.
func TestATransactionRunsOncePerToken(t *testing.T) {
	ctx := context.Background()
	f := open(t)
	c, table := f.Client(), f.Table()
	put := func(sk string) []types.TransactWriteItem {
		return []types.TransactWriteItem{{Put: &types.Put{TableName: &table, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "x"}, "sk": &types.AttributeValueMemberS{Value: sk}}}}}
	}
	token := aws.String(uuid.NewString())
	for i := range 2 {
		if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: put("once"), ClientRequestToken: token}); err != nil {
			t.Fatalf("attempt %d of a transaction with one token: %v", i+1, err)
		}
	}
	_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: put("other"), ClientRequestToken: token})
	var mismatch *types.IdempotentParameterMismatchException
	if !errors.As(err, &mismatch) {
		t.Fatalf("the token of another transaction: got %v, want IdempotentParameterMismatchException", err)
	}
	// Without the token, the same items meet their own condition.
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: put("once")})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("the same items with a new token: got %v, want a TransactionCanceledException", err)
	}
}
