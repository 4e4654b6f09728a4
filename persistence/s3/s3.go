package s3

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
)

func init() {
	persistence.RegisterModule(persistence.Module{
		Name:      "s3",
		Aliases:   []string{"aett.s3"},
		Variables: Variables,
		Open: func(ctx context.Context, env persistence.Env) (persistence.Factory, error) {
			return OpenEnv(ctx, env)
		},
	})
}

// Factory is the S3 module's factory. The recorders of an application,
// of every tenant, keep their objects under one prefix of one bucket: the
// application's events in one log, the records of each purpose
// (snapshots) in a log of their own.
type Factory struct {
	s      *shared
	tenant string
}

type shared struct {
	o      *objects
	cfg    Config
	closed atomic.Bool
	events *space

	mu     sync.Mutex
	spaces map[string]*space // by escaped purpose

	// afterMarker, if set, runs between an erasure's marker and its
	// deletion: tests stop an eraser there.
	afterMarker func()
}

var _ persistence.Factory = (*Factory)(nil)

// OpenEnv opens the factory that the environment configures (see
// [ConfigFromEnv]).
func OpenEnv(ctx context.Context, env persistence.Env) (*Factory, error) {
	c, err := ConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	return Open(ctx, c)
}

// Open connects to S3 with the SDK's configuration for c.AWS and opens
// the factory of c.Bucket and c.Prefix.
func Open(ctx context.Context, c Config) (*Factory, error) {
	ac, err := awsconf.Load(ctx, c.AWS)
	if err != nil {
		return nil, err
	}
	return New(ctx, awss3.NewFromConfig(ac, func(o *awss3.Options) {
		o.UsePathStyle = c.UsePathStyle
		// Checksums are validated where S3 sends them; without this the
		// SDK logs a line for every object read from a server that sends
		// none (emulators, many S3-compatible servers).
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), c)
}

// New opens the factory of c.Bucket and c.Prefix with a client of the
// caller's; c.AWS and c.UsePathStyle are not used. With c.CreateBucket
// (and not c.ReadOnly) the bucket is created if it does not exist;
// otherwise a missing bucket is an error wrapping persistence.ErrNoTable.
func New(ctx context.Context, client *awss3.Client, c Config) (*Factory, error) {
	if !bucketName.MatchString(c.Bucket) {
		return nil, fmt.Errorf("%w: S3 bucket name %q is not 3 to 63 lower case letters, digits, '.' or '-'", persistence.ErrConfig, c.Bucket)
	}
	if c.PageSize <= 0 || c.PageSize > MaxListPage {
		c.PageSize = MaxListPage
	}
	o := &objects{client: client, bucket: c.Bucket, page: int32(c.PageSize)}
	s := &shared{o: o, cfg: c, spaces: map[string]*space{}}
	s.events = &space{o: o, prefix: c.Prefix + "e/", events: true, chunks: newChunkCache(chunkCacheBytes), known: &known{}}
	s.events.ev = s.events
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	if !c.ReadOnly {
		// An eraser that died after its marker left objects that reads
		// hide but that are still stored.
		if err := s.finishAll(ctx, "open: finish erasures"); err != nil {
			return nil, err
		}
	}
	return &Factory{s: s}, nil
}

// ensureBucket checks that the bucket exists, and creates it if it may.
func (s *shared) ensureBucket(ctx context.Context) error {
	op := "open S3 bucket " + s.cfg.Bucket
	_, err := s.o.client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.cfg.Bucket})
	var nf *types.NotFound
	missing := errors.As(err, &nf) || code(err) == "NotFound" || code(err) == "NoSuchBucket"
	switch {
	case err == nil:
		return nil
	case missing && s.cfg.CreateBucket && !s.cfg.ReadOnly:
		in := &awss3.CreateBucketInput{Bucket: &s.cfg.Bucket}
		if r := s.o.client.Options().Region; r != "" && r != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
		}
		_, err := s.o.client.CreateBucket(ctx, in)
		var owned *types.BucketAlreadyOwnedByYou
		if err != nil && !errors.As(err, &owned) {
			return fail(op+": create it", err, false)
		}
		return nil
	case missing:
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: fmt.Errorf("bucket %s does not exist (CREATE_TABLE is off or READ_ONLY is on)", s.cfg.Bucket)}
	}
	return fail(op, err, false)
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
		return &persistence.Error{Op: op, Kind: persistence.ErrReadOnly, Err: fmt.Errorf("bucket %s is opened read-only", s.cfg.Bucket)}
	}
	return nil
}

// purpose returns the log of a purpose.
func (s *shared) purpose(name string) *space { return s.space(escape(name)) }

// space returns the log of a purpose by its escaped name.
func (s *shared) space(seg string) *space {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spaces[seg]
	if sp == nil {
		sp = &space{o: s.o, prefix: s.cfg.Prefix + "p/" + seg + "/", purpose: seg, ev: s.events, chunks: s.events.chunks}
		s.spaces[seg] = sp
	}
	return sp
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
	return &AggregateRecorder{s: f.s, sp: f.s.purpose(purpose), tenant: f.tenant}, nil
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

// Tenant returns the factory of tenant id, in the same bucket and prefix.
func (f *Factory) Tenant(id string) (persistence.Factory, error) {
	if err := persistence.CheckTenant(id); err != nil {
		return nil, err
	}
	return &Factory{s: f.s, tenant: id}, nil
}

// Bucket returns the name of the factory's bucket.
func (f *Factory) Bucket() string { return f.s.cfg.Bucket }

// Prefix returns the prefix of the factory's keys.
func (f *Factory) Prefix() string { return f.s.cfg.Prefix }

// Client returns the factory's S3 client.
func (f *Factory) Client() *awss3.Client { return f.s.o.client }

// LostRaces returns how many times a save of this factory found the log
// position it tried to claim taken by another writer (another process,
// or another factory of the same store) and started again.
func (f *Factory) LostRaces() int64 {
	f.s.events.mu.Lock()
	defer f.s.events.mu.Unlock()
	return f.s.events.races
}

// Close makes further calls of the factory's recorders, in every tenant,
// fail with an error wrapping persistence.ErrInterface. Closing a
// tenant's factory does nothing.
func (f *Factory) Close() error {
	if f.tenant == "" {
		f.s.closed.Store(true)
	}
	return nil
}

// DeleteObjects deletes every object under the factory's prefix, page by
// page. Tests and tools use it; applications never do. It is not atomic.
func (f *Factory) DeleteObjects(ctx context.Context) error {
	op := "delete the objects under " + f.s.cfg.Prefix
	var keys []string
	if err := f.s.o.list(ctx, f.s.cfg.Prefix, "", "", func(k string) bool { keys = append(keys, k); return true }); err != nil {
		return fail(op, err, false)
	}
	if err := f.s.o.remove(ctx, keys); err != nil {
		return fail(op, err, true)
	}
	return nil
}
