package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/strata-go/strata/persistence"
)

// objects is the bucket as the recorders use it: a few kinds of calls,
// each with S3's errors turned into Strata's. It knows nothing of events.
type objects struct {
	client *awss3.Client
	bucket string
	page   int32
}

// errPrecondition is a conditional put or delete that S3 refused: the
// object exists (If-None-Match) or has changed (If-Match).
var errPrecondition = errors.New("precondition failed")

// get returns an object's body and ETag, or found false.
func (o *objects) get(ctx context.Context, key string) (body []byte, etag string, found bool, err error) {
	out, err := o.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &o.bucket, Key: &key})
	if err != nil {
		var nk *types.NoSuchKey
		if errors.As(err, &nk) || code(err) == "NoSuchKey" {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	body, err = io.ReadAll(out.Body)
	if err != nil {
		return nil, "", false, err
	}
	return body, aws.ToString(out.ETag), true, nil
}

// exists reports whether the object exists.
func (o *objects) exists(ctx context.Context, key string) (bool, error) {
	_, err := o.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &o.bucket, Key: &key})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) || code(err) == "NotFound" || code(err) == "NoSuchKey" {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// create puts an object only if none has its key (If-None-Match: *): it
// returns errPrecondition if one has.
func (o *objects) create(ctx context.Context, key string, body []byte) error {
	_, err := o.put(ctx, key, body, &awss3.PutObjectInput{IfNoneMatch: aws.String("*")})
	return err
}

// createTagged is create that also returns the new object's ETag.
func (o *objects) createTagged(ctx context.Context, key string, body []byte) (string, error) {
	return o.put(ctx, key, body, &awss3.PutObjectInput{IfNoneMatch: aws.String("*")})
}

// replace puts an object only if it still has the ETag (If-Match), and
// returns the new ETag; errPrecondition if it has another, or is gone.
func (o *objects) replace(ctx context.Context, key string, body []byte, etag string) (string, error) {
	return o.put(ctx, key, body, &awss3.PutObjectInput{IfMatch: aws.String(etag)})
}

func (o *objects) put(ctx context.Context, key string, body []byte, in *awss3.PutObjectInput) (string, error) {
	in.Bucket, in.Key = &o.bucket, &key
	in.Body = bytes.NewReader(body)
	in.ContentLength = aws.Int64(int64(len(body)))
	out, err := o.client.PutObject(ctx, in)
	switch c := code(err); {
	case err == nil:
		return aws.ToString(out.ETag), nil
	case c == "PreconditionFailed", in.IfMatch != nil && (c == "NoSuchKey" || c == "NotFound"):
		return "", errPrecondition
	case c == "ConditionalRequestConflict":
		// Another conditional write of the key is in flight: S3 has
		// decided neither, and this one did not happen.
		return "", errPrecondition
	}
	return "", err
}

// remove deletes objects, a thousand a call.
func (o *objects) remove(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := o.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: &o.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
		keys = keys[n:]
	}
	return nil
}

// list calls each for the keys under prefix after startAfter, in order,
// page after page, until each returns false or the keys end. With a
// delimiter it yields the common prefixes instead.
func (o *objects) list(ctx context.Context, prefix, startAfter, delimiter string, each func(key string) bool) error {
	in := &awss3.ListObjectsV2Input{Bucket: &o.bucket, Prefix: &prefix}
	if startAfter != "" {
		in.StartAfter = &startAfter
	}
	if delimiter != "" {
		in.Delimiter = &delimiter
	}
	if o.page > 0 {
		in.MaxKeys = aws.Int32(o.page)
	}
	p := awss3.NewListObjectsV2Paginator(o.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		if delimiter != "" {
			for _, cp := range page.CommonPrefixes {
				if !each(aws.ToString(cp.Prefix)) {
					return nil
				}
			}
			continue
		}
		for _, c := range page.Contents {
			if !each(aws.ToString(c.Key)) {
				return nil
			}
		}
	}
	return nil
}

// code is the S3 error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// fail classifies an error of the SDK. A write whose request may have
// reached S3 has an unknown outcome; a refusal, or a request that never
// left, recorded nothing.
func fail(op string, err error, write bool) error {
	var pe *persistence.Error
	if errors.As(err, &pe) {
		return err
	}
	switch code(err) {
	case "NoSuchBucket":
		return &persistence.Error{Op: op, Kind: persistence.ErrNoTable, Err: err}
	case "InvalidArgument", "InvalidRequest", "KeyTooLongError", "EntityTooLarge", "MalformedXML", "InvalidBucketName":
		return &persistence.Error{Op: op, Kind: persistence.ErrProgramming, Err: err}
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "SlowDown", "ServiceUnavailable", "RequestTimeTooSkewed", "ExpiredToken":
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	var ne *net.OpError
	if !write || errors.As(err, &ne) && ne.Op == "dial" {
		return &persistence.Error{Op: op, Kind: persistence.ErrOperational, Err: err}
	}
	return &persistence.Error{Op: op, Kind: persistence.ErrUnknownOutcome, Err: err}
}

// sortable encodes n so that the strings sort as the numbers do.
func sortable(n int64) string {
	return fmt.Sprintf("%016x", uint64(n)^(1<<63))
}

func unsortable(s string) (int64, error) {
	u, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return 0, fmt.Errorf("%w: key part %q is not a number", persistence.ErrCorrupt, s)
	}
	return int64(u ^ (1 << 63)), nil
}

// lastSegment is the part of a key after its last slash.
func lastSegment(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}
