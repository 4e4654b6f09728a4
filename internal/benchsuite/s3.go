package benchsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
	ps3 "github.com/strata-go/strata/persistence/s3"
)

// S3AggregateSize is the aggregate the S3 read case reads, saved one
// event a save, as an application saves it: one object a save.
const S3AggregateSize = 100

// S3 returns the cases of the S3 adapter on a new bucket at the
// endpoint, and a function that empties and deletes it. The baseline is
// the SDK alone under a prefix of its own: a save is one PutObject with
// If-None-Match: * of one object per aggregate version (optimistic
// concurrency, no notification order, no commit or tracking records), a
// read lists the aggregate's objects, every page, and gets each.
func S3(ctx context.Context, endpoint string) ([]Case, func(), error) {
	settings := awsconf.Settings{Endpoint: endpoint, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"}
	bucket := "bench-" + uuid.NewString()[:8]
	f, err := ps3.Open(ctx, ps3.Config{Bucket: bucket, Prefix: "strata/", AWS: settings, UsePathStyle: true, CreateBucket: true})
	if err != nil {
		return nil, nil, err
	}
	raw := &rawS3{client: f.Client(), bucket: bucket, prefix: "raw/"}
	done := func() {
		ctx := context.Background()
		f.DeleteObjects(ctx)
		raw.deleteAll(ctx)
		f.Client().DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket})
		f.Close()
	}
	rec, err := f.ApplicationRecorder(ctx)
	if err != nil {
		done()
		return nil, nil, err
	}
	save := func(writers int) Case {
		return Case{Name: "save 1 event", Baseline: "raw PutObject If-None-Match", Writers: writers, Events: 1,
			Setup: func(context.Context) (Op, Op, error) {
				strata := func(ctx context.Context, _ int) error {
					_, err := rec.InsertEvents(ctx, Events(1, StateSize))
					return err
				}
				base := func(ctx context.Context, _ int) error { return raw.Insert(ctx, Events(1, StateSize)) }
				return strata, base, nil
			}}
	}
	cfg := ps3.Config{Bucket: bucket, Prefix: "strata/", AWS: settings, UsePathStyle: true}
	// read is a read of an aggregate of S3AggregateSize saves by the
	// process that wrote it (which knows its chunks), or, cold, by a
	// process of its own opened for each read, as the first read of
	// another process is.
	read := func(cold bool) Case {
		name := fmt.Sprintf("get an aggregate of %d saves", S3AggregateSize)
		if cold {
			name += ", a process's first read"
		}
		return Case{Name: name, Baseline: "raw List+GetObject", Events: S3AggregateSize,
			Setup: func(ctx context.Context) (Op, Op, error) {
				return readCase(ctx, rec, raw, cfg, cold)
			}}
	}
	return []Case{save(1), save(ManyWriters), read(false), read(true)}, done, nil
}

// readCase fills an aggregate of S3AggregateSize saves in Strata's
// store and the raw one, and returns the two reads of it.
func readCase(ctx context.Context, rec persistence.ApplicationRecorder, raw *rawS3, cfg ps3.Config, cold bool) (Op, Op, error) {
	history := History(S3AggregateSize, StateSize)
	for i := range history {
		if _, err := rec.InsertEvents(ctx, history[i:i+1]); err != nil {
			return nil, nil, err
		}
		if err := raw.Insert(ctx, history[i:i+1]); err != nil {
			return nil, nil, err
		}
	}
	id := history[0].OriginatorID
	strata := func(ctx context.Context, _ int) error {
		r := rec
		if cold {
			f, err := ps3.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer f.Close()
			if r, err = f.ApplicationRecorder(ctx); err != nil {
				return err
			}
		}
		evs, err := r.SelectEvents(ctx, id, persistence.EventQuery{})
		if err == nil && len(evs) != S3AggregateSize {
			err = fmt.Errorf("%d events", len(evs))
		}
		return err
	}
	base := func(ctx context.Context, _ int) error {
		n, err := raw.SelectAggregate(ctx, id)
		if err == nil && n != S3AggregateSize {
			err = fmt.Errorf("%d objects", n)
		}
		return err
	}
	return strata, base, nil
}

// rawS3 is the baseline: SDK calls written here by hand.
type rawS3 struct {
	client         *awss3.Client
	bucket, prefix string
}

type rawS3Event struct {
	Topic string `json:"topic"`
	State []byte `json:"state"`
}

func (r *rawS3) Insert(ctx context.Context, events []persistence.StoredEvent) error {
	for _, e := range events {
		body, _ := json.Marshal(rawS3Event{Topic: e.Topic, State: e.State})
		key := fmt.Sprintf("%s%s/%016x", r.prefix, e.OriginatorID, uint64(e.OriginatorVersion)^(1<<63))
		if _, err := r.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &r.bucket, Key: &key, Body: bytes.NewReader(body), IfNoneMatch: aws.String("*")}); err != nil {
			return err
		}
	}
	return nil
}

func (r *rawS3) SelectAggregate(ctx context.Context, id uuid.UUID) (int, error) {
	prefix := r.prefix + id.String() + "/"
	p := awss3.NewListObjectsV2Paginator(r.client, &awss3.ListObjectsV2Input{Bucket: &r.bucket, Prefix: &prefix})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, o := range page.Contents {
			out, err := r.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &r.bucket, Key: o.Key})
			if err != nil {
				return n, err
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				return n, err
			}
			var e rawS3Event
			if err := json.Unmarshal(b, &e); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func (r *rawS3) deleteAll(ctx context.Context) {
	p := awss3.NewListObjectsV2Paginator(r.client, &awss3.ListObjectsV2Input{Bucket: &r.bucket, Prefix: &r.prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return
		}
		for _, o := range page.Contents {
			r.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &r.bucket, Key: o.Key})
		}
	}
}
