package benchsuite

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
	ddb "github.com/strata-go/strata/persistence/dynamodb"
)

// DefaultAWSEndpoint is the DynamoDB endpoint that the strata bench
// command measures unless told otherwise: the tests' emulator.
const DefaultAWSEndpoint = "http://127.0.0.1:15000"

// DynamoDBAggregateSize is the aggregate the DynamoDB read case reads: an
// emulator copies its table in every transaction, which makes the 100,000
// events of the other stores' catch-up case too slow to load there.
const DynamoDBAggregateSize = 100

// DynamoDB returns the cases of the DynamoDB adapter on new tables at the
// endpoint, and a function that drops them. The baseline is the SDK
// alone on a table of its own: a save is one TransactWriteItems of one
// conditional put per event (optimistic concurrency, no notification
// order), a read is a paginated query of the aggregate's items.
func DynamoDB(ctx context.Context, endpoint string) ([]Case, func(), error) {
	settings := awsconf.Settings{Endpoint: endpoint, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"}
	table := "bench_" + uuid.NewString()[:8]
	f, err := ddb.Open(ctx, ddb.Config{Table: table, AWS: settings, CreateTable: true})
	if err != nil {
		return nil, nil, err
	}
	rawF, err := ddb.Open(ctx, ddb.Config{Table: table + "_raw", AWS: settings, CreateTable: true})
	if err != nil {
		f.DropTable(ctx)
		return nil, nil, err
	}
	done := func() {
		f.DropTable(context.Background())
		rawF.DropTable(context.Background())
		f.Close()
	}
	rec, err := f.ApplicationRecorder(ctx)
	if err != nil {
		done()
		return nil, nil, err
	}
	raw := &rawDynamoDB{client: rawF.Client(), table: rawF.Table()}
	save := func(writers int) Case {
		return Case{Name: "save 1 event", Baseline: "raw TransactWriteItems", Writers: writers, Events: 1,
			Setup: func(context.Context) (Op, Op, error) {
				strata := func(ctx context.Context, _ int) error {
					_, err := rec.InsertEvents(ctx, Events(1, StateSize))
					return err
				}
				base := func(ctx context.Context, _ int) error { return raw.Insert(ctx, Events(1, StateSize)) }
				return strata, base, nil
			}}
	}
	read := Case{Name: fmt.Sprintf("get an aggregate of %d events", DynamoDBAggregateSize), Baseline: "raw Query", Events: DynamoDBAggregateSize,
		Setup: func(ctx context.Context) (Op, Op, error) {
			history := History(DynamoDBAggregateSize, StateSize)
			if _, err := rec.InsertEvents(ctx, history); err != nil {
				return nil, nil, err
			}
			for i := 0; i < len(history); i += 50 {
				if err := raw.Insert(ctx, history[i:min(i+50, len(history))]); err != nil {
					return nil, nil, err
				}
			}
			id := history[0].OriginatorID
			strata := func(ctx context.Context, _ int) error {
				evs, err := rec.SelectEvents(ctx, id, persistence.EventQuery{})
				if err == nil && len(evs) != DynamoDBAggregateSize {
					err = fmt.Errorf("%d events", len(evs))
				}
				return err
			}
			base := func(ctx context.Context, _ int) error {
				n, err := raw.SelectAggregate(ctx, id)
				if err == nil && n != DynamoDBAggregateSize {
					err = fmt.Errorf("%d items", n)
				}
				return err
			}
			return strata, base, nil
		}}
	return []Case{save(1), save(ManyWriters), read}, done, nil
}

// rawDynamoDB is the baseline: SDK calls written here by hand.
type rawDynamoDB struct {
	client *dynamodb.Client
	table  string
}

func (r *rawDynamoDB) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	items := make([]types.TransactWriteItem, len(events))
	for i, e := range events {
		items[i] = types.TransactWriteItem{Put: &types.Put{
			TableName: &r.table,
			Item: map[string]types.AttributeValue{
				"pk":    &types.AttributeValueMemberS{Value: e.OriginatorID.String()},
				"sk":    &types.AttributeValueMemberS{Value: fmt.Sprintf("%016x", uint64(e.OriginatorVersion)^(1<<63))},
				"topic": &types.AttributeValueMemberS{Value: e.Topic},
				"state": &types.AttributeValueMemberB{Value: e.State},
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}
	}
	_, err := r.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return err
}

func (r *rawDynamoDB) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	p := dynamodb.NewQueryPaginator(r.client, &dynamodb.QueryInput{
		TableName:                 &r.table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: id.String()}},
	})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, item := range page.Items {
			if _, ok := item["state"]; ok {
				n++
			}
		}
	}
	return n, nil
}
