package s3_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/strata-go/strata/internal/awstest"
)

// TestTheServerHonoursConditionalPuts proves what the store relies on,
// on the server the tests run against: a put with If-None-Match: * of a
// key that exists, or with If-Match of an ETag the object no longer has,
// is refused with PreconditionFailed and changes nothing; of many
// concurrent creates of one key exactly one succeeds.
func TestTheServerHonoursConditionalPuts(t *testing.T) {
	awstest.Require(t)
	ctx := context.Background()
	c := awstest.S3()
	bucket := awstest.S3Env(t)["S3_BUCKET"] // dropped when the test ends
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string, in awss3.PutObjectInput) (string, error) {
		in.Bucket, in.Key, in.Body = &bucket, &key, bytes.NewReader([]byte(body))
		out, err := c.PutObject(ctx, &in)
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ETag), nil
	}
	precondition := func(err error) bool {
		var ae smithy.APIError
		return errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed"
	}
	get := func(key string) string {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(out.Body)
		return b.String()
	}
	etag, err := put("k", "first", awss3.PutObjectInput{IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatalf("create a new key: %v", err)
	}
	if _, err := put("k", "second", awss3.PutObjectInput{IfNoneMatch: aws.String("*")}); !precondition(err) {
		t.Fatalf("create an existing key: %v, want PreconditionFailed", err)
	}
	if got := get("k"); got != "first" {
		t.Fatalf("a refused create changed the object to %q", got)
	}
	etag2, err := put("k", "replaced", awss3.PutObjectInput{IfMatch: aws.String(etag)})
	if err != nil {
		t.Fatalf("replace with the current ETag: %v", err)
	}
	if _, err := put("k", "stale", awss3.PutObjectInput{IfMatch: aws.String(etag)}); !precondition(err) {
		t.Fatalf("replace with a stale ETag: %v, want PreconditionFailed", err)
	}
	if got := get("k"); got != "replaced" || etag2 == etag {
		t.Fatalf("after a refused replace: %q (ETags %s, %s)", got, etag, etag2)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := put("race", "x", awss3.PutObjectInput{IfNoneMatch: aws.String("*")})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case precondition(err):
				lost++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != 15 {
		t.Fatalf("16 concurrent creates of one key: %d succeeded, %d refused; want 1 and 15", won, lost)
	}
}
