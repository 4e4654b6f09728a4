package awstest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	stypes "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Config returns an SDK configuration for the emulator.
func Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(Endpoint()),
	}
}

// DynamoDB returns a client of the emulator's DynamoDB.
func DynamoDB() *dynamodb.Client { return dynamodb.NewFromConfig(Config()) }

// S3 returns a client of the emulator's S3.
func S3() *s3.Client {
	return s3.NewFromConfig(Config(), func(o *s3.Options) { o.UsePathStyle = true })
}

func dropTables(t testing.TB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := dynamodb.NewListTablesPaginator(DynamoDB(), &dynamodb.ListTablesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("list tables: %v", err)
			return
		}
		for _, name := range page.TableNames {
			if strings.HasPrefix(name, prefix) {
				dropTable(t, name)
			}
		}
	}
}

func dropTable(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := DynamoDB().DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name})
	var nf *dtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("drop table %s: %v", name, err)
	}
}

func dropBucket(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := S3()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &name})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nb *stypes.NoSuchBucket
		if errors.As(err, &nb) {
			return
		}
		if err != nil {
			t.Errorf("empty bucket %s: %v", name, err)
			return
		}
		var objs []stypes.ObjectIdentifier
		for _, o := range page.Contents {
			objs = append(objs, stypes.ObjectIdentifier{Key: o.Key})
		}
		if len(objs) > 0 {
			if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &name, Delete: &stypes.Delete{Objects: objs, Quiet: aws.Bool(true)}}); err != nil {
				t.Errorf("empty bucket %s: %v", name, err)
				return
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &name}); err != nil {
		t.Errorf("drop bucket %s: %v", name, err)
	}
}
