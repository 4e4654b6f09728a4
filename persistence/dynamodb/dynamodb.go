package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "dynamodb",
		Aliases:   []string{"aett.dynamodb"},
		Variables: Variables,
		Open: func(ctx context.Context, env persistence.Env) (persistence.Factory, error) {
			return OpenEnv(ctx, env)
		},
	})
}

// The limits DynamoDB sets on one transaction and one item.
const (
	// MaxTransactionItems is the most items one TransactWriteItems call
	// writes or checks.
	MaxTransactionItems = 100
	// MaxTransactionBytes is the most bytes one TransactWriteItems call
	// writes.
	MaxTransactionBytes = 4 << 20
	// MaxItemBytes is the largest item, names and values included.
	MaxItemBytes = 400 << 10
)

// itemMargin is kept free in every item for the names of its attributes
// and DynamoDB's own accounting, so that a size checked here is never
// refused there.
const itemMargin = 1 << 10

// The partitions of the table. Every item has a string partition key pk
// and a string sort key sk; numbers in sort keys are [sortable].
const (
	pkMeta    = "m" // sk "counter": the notification counter; sk "t|tenant": a tenant's highest notification ID
	pkLog     = "n" // sk the last notification ID of a save: its log item
	pkPurpose = "p" // sk a purpose that has records
	skCounter = "counter"
	// eventsPurpose is the purpose of the application's own events;
	// aggregate recorders' purposes are prefixed so that none can be it.
	eventsPurpose = "e"
)

func headPK(purpose, tenant string) string { return "h|" + esc(purpose) + "|" + esc(tenant) }
func chunkPK(purpose, tenant string, id fmt.Stringer) string {
	return "a|" + esc(purpose) + "|" + esc(tenant) + "|" + id.String()
}
func commitPK(tenant string, id fmt.Stringer) string { return "c|" + esc(tenant) + "|" + id.String() }
func trackingPK(app string) string                   { return "t|" + esc(app) }
func tenantMaxSK(tenant string) string               { return "t|" + esc(tenant) }

// Attribute values.
func vS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func vN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func vB(b []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: b} }
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": vS(pk), "sk": vS(sk)}
}

func getS(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getB(item map[string]types.AttributeValue, name string) []byte {
	if v, ok := item[name].(*types.AttributeValueMemberB); ok {
		return v.Value
	}
	return nil
}

func getN(item map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: attribute %s=%q is not an integer", persistence.ErrCorrupt, name, v.Value)
	}
	return n, nil
}

// Factory is the DynamoDB module's factory. All the recorders of an
// application, of every tenant and purpose, keep their items in one
// table, so that one transaction can write events, their notifications,
// commits and tracking record together.
type Factory struct {
	s      *shared
	tenant string
}

type shared struct {
	client *dynamodb.Client
	table  string
	cfg    Config
	closed atomic.Bool

	mu       sync.Mutex
	purposes map[string]bool // purposes known to be registered

	// writeMu queues this process's saves for the notification counter,
	// and guards what the process last knew of it.
	writeMu sync.Mutex
	// known says that n and last are the counter as this process last
	// wrote or read it. A save then writes on the condition that the
	// counter still holds n without reading it first: only another
	// process can have moved it, and then the condition fails and the
	// save reads it and runs again.
	known bool
	n     int64
	last  string

	// beforeErase, if set (by tests only), runs between the reads of a
	// deletion or purge and its transaction, where another writer may
	// land.
	beforeErase func()
}

var (
	_ persistence.Factory = (*Factory)(nil)
	_ persistence.Eraser  = (*Factory)(nil)
)

// OpenEnv opens the factory that the environment configures (see
// [ConfigFromEnv]).
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Open connects to DynamoDB with the SDK's configuration for c.AWS and
// opens the factory of c.Table.
func Open(ctx context.Context, c Config) (*Factory, error) {
	ac, err := awsconf.Load(ctx, c.AWS)
	if err != nil {
		return nil, err
	}
	return New(ctx, dynamodb.NewFromConfig(ac), c)
}

// New opens the factory of c.Table with a client of the caller's; c.AWS
// is not used. With c.CreateTable (and not c.ReadOnly) the table is
// created if it does not exist; otherwise a missing table is an error
// wrapping persistence.ErrNoTable.
func New(ctx context.Context, client *dynamodb.Client, c Config) (*Factory, error) {
	if !tableName.MatchString(c.Table) {
		return nil, fmt.Errorf("%w: DynamoDB table name %q is not 3 to 255 letters, digits, '_', '-' or '.'", persistence.ErrConfig, c.Table)
	}
	s := &shared{client: client, table: c.Table, cfg: c, purposes: map[string]bool{}}
	if err := s.ensureTable(ctx); err != nil {
		return nil, err
	}
	return &Factory{s: s}, nil
}

// ensureTable checks that the table exists with the right key schema, and
// creates it if it may.
func (s *shared) ensureTable(ctx context.Context) error {
	op := "open DynamoDB table " + s.table
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf) && s.cfg.CreateTable && !s.cfg.ReadOnly:
		_, err = s.client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   &s.table,
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return s.fail(op, err, false)
		}
		w := dynamodb.NewTableExistsWaiter(s.client)
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}, 5*time.Minute); err != nil {
			return s.fail(op+": wait until it is active", err, false)
		}
		return nil
	case errors.As(err, &nf):
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: fmt.Errorf("table %s does not exist (CREATE_TABLE is off or READ_ONLY is on)", s.table)}
	case err != nil:
		return s.fail(op, err, false)
	}
	ks := out.Table.KeySchema
	if len(ks) != 2 || aws.ToString(ks[0].AttributeName) != "pk" || ks[0].KeyType != types.KeyTypeHash ||
		aws.ToString(ks[1].AttributeName) != "sk" || ks[1].KeyType != types.KeyTypeRange {
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: fmt.Errorf("table %s exists with another key schema than (pk, sk): it is not a Strata table", s.table)}
	}
	return nil
}

// begin checks what every call checks before it sends anything.
func (s *shared) begin(ctx context.Context, op string, write bool) error {
	if err := ctx.Err(); err != nil {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	if s.closed.Load() {
		return &persistence.Error{Op: op, Kind: persistence.ErrInterface, Err: errors.New("factory is closed")}
	}
	if write && s.cfg.ReadOnly {
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: fmt.Errorf("table %s is opened read-only", s.table)}
	}
	return nil
}

// fail classifies an error of the SDK. A write whose request may have
// reached DynamoDB has an unknown outcome; a refusal or a request that
// never left is an operational error that recorded nothing.
func (s *shared) fail(op string, err error, write bool) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException":
			return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: err}
		case "ValidationException", "SerializationException":
			return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: err}
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "LimitExceededException":
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		case "UnrecognizedClientException", "AccessDeniedException", "InvalidSignatureException", "MissingAuthenticationTokenException":
			return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
		}
		if write {
			return &persistence.Error{Op: op, Kind: persistence.ErrUnknownOutcome, Err: err}
		}
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	var ne *net.OpError
	if !write || errors.As(err, &ne) && ne.Op == "dial" {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return &persistence.Error{Op: op, Kind: persistence.ErrUnknownOutcome, Err: err}
}

// AggregateRecorder returns the recorder of the purpose ("snapshots").
func (f *Factory) AggregateRecorder(ctx context.Context, purpose string) (persistence.AggregateRecorder, error) {
	op := "open the " + purpose + " recorder"
	if err := f.s.begin(ctx, op, false); err != nil {
		return nil, err
	}
	if purpose == "" {
		return nil, &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: errors.New("empty purpose")}
	}
	p := "s:" + purpose
	if err := f.s.register(ctx, p); err != nil {
		return nil, err
	}
	return &AggregateRecorder{s: f.s, tenant: f.tenant, purpose: p}, nil
}

// register records the purpose, so that deleting an aggregate finds its
// records of every purpose, even one another process opened.
func (s *shared) register(ctx context.Context, purpose string) error {
	s.mu.Lock()
	known := s.purposes[purpose]
	s.mu.Unlock()
	if known || s.cfg.ReadOnly {
		return nil
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: key(pkPurpose, purpose)})
	if err != nil {
		return s.fail("register purpose "+purpose, err, true)
	}
	s.mu.Lock()
	s.purposes[purpose] = true
	s.mu.Unlock()
	return nil
}

// ApplicationRecorder returns the recorder of the application's events,
// which refuses tracking records.
func (f *Factory) ApplicationRecorder(ctx context.Context) (persistence.ApplicationRecorder, error) {
	if err := f.s.begin(ctx, "open the application recorder", false); err != nil {
		return nil, err
	}
	return persistence.ApplicationView(&Recorder{s: f.s, tenant: f.tenant}), nil
}

// ProcessRecorder returns the recorder of the application's events and
// tracking records.
func (f *Factory) ProcessRecorder(ctx context.Context) (persistence.ProcessRecorder, error) {
	if err := f.s.begin(ctx, "open the process recorder", false); err != nil {
		return nil, err
	}
	return &Recorder{s: f.s, tenant: f.tenant, tracking: true}, nil
}

// Tenant returns the factory of tenant id, on the same table.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	return &Factory{s: f.s, tenant: id}, nil
}

// Table returns the name of the factory's table.
func (f *Factory) Table() string { return f.s.table }

// Client returns the factory's DynamoDB client.
func (f *Factory) Client() *dynamodb.Client { return f.s.client }

// Close makes further calls of the factory's recorders, in every tenant,
// fail with an error wrapping persistence.ErrInterface. Closing a
// tenant's factory does nothing.
func (f *Factory) Close() error {
	if f.tenant == "" {
		f.s.closed.Store(true)
	}
	return nil
}

// DropTable deletes the factory's table and everything in it, and waits
// until it is gone. Tests and tools use it; applications never do.
func (f *Factory) DropTable(ctx context.Context) error {
	op := "drop DynamoDB table " + f.s.table
	if _, err := f.s.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &f.s.table}); err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		return f.s.fail(op, err, true)
	}
	w := dynamodb.NewTableNotExistsWaiter(f.s.client)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &f.s.table}, 5*time.Minute); err != nil {
		return f.s.fail(op, err, false)
	}
	return nil
}

// backoff waits before attempt n (from 1) of a transaction that lost a
// race, with full jitter, so that writers that lost together do not
// collide again together.
func backoff(ctx context.Context, n int) error {
	d := time.Duration(rand.Int64N(int64(min(50*time.Millisecond, time.Millisecond<<min(n, 10)))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// maxAttempts bounds the attempts of one save that keeps losing the race
// for the notification counter.
const maxAttempts = 1000
