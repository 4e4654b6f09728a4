// Package awsconf builds the AWS SDK configuration of Strata's DynamoDB and
// S3 modules from an application's environment.
//
// The SDK reads its usual variables (AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) from the process environment by
// itself; an application's environment can also come from a map given in
// code, with per-application prefixes (WORLDS_AWS_REGION), which the SDK
// does not see. So the same variables are read here, through
// persistence.Env, and given to the SDK as options, which win over what it
// finds in the process environment and shared files.
package awsconf

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/strata-go/strata/persistence"
)

// Variables lists the SDK variables that Load reads from the application's
// environment; service is the service's endpoint suffix ("DYNAMODB", "S3").
func Variables(service string) []string {
	return []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}
}

// Settings are the AWS settings of one application.
type Settings struct {
	// Endpoint, if not empty, is the service's URL (an emulator, a VPC
	// endpoint); otherwise the SDK resolves the region's.
	Endpoint string
	// Region is the AWS region; it is required, from here or the SDK's
	// shared configuration.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials; without them the SDK's default chain finds some (the
	// process environment, shared files, the instance role).
	AccessKeyID, SecretAccessKey, SessionToken string
	// Profile selects a profile of the shared configuration files.
	Profile string
}

// FromEnv reads the settings of service from env.
func FromEnv(env persistence.Env, service string) (Settings, error) {
	s := Settings{
		Endpoint:        strings.TrimSpace(env.String("AWS_ENDPOINT_URL_"+service, env.Get("AWS_ENDPOINT_URL"))),
		Region:          strings.TrimSpace(env.String("AWS_REGION", env.Get("AWS_DEFAULT_REGION"))),
		AccessKeyID:     strings.TrimSpace(env.Get("AWS_ACCESS_KEY_ID")),
		SecretAccessKey: strings.TrimSpace(env.Get("AWS_SECRET_ACCESS_KEY")),
		SessionToken:    strings.TrimSpace(env.Get("AWS_SESSION_TOKEN")),
		Profile:         strings.TrimSpace(env.Get("AWS_PROFILE")),
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			_, name, _ := env.Lookup("AWS_ENDPOINT_URL_" + service)
			if env.Get("AWS_ENDPOINT_URL_"+service) == "" {
				_, name, _ = env.Lookup("AWS_ENDPOINT_URL")
			}
			return s, fmt.Errorf("%w: %s=%q is not an http or https URL", persistence.ErrConfig, name, s.Endpoint)
		}
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		return s, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together", persistence.ErrConfig)
	}
	return s, nil
}

// Load returns the SDK configuration for the settings.
func Load(ctx context.Context, s Settings) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(sdkLogger{})}
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken)))
	}
	if s.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(s.Endpoint))
	}
	c, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return c, fmt.Errorf("%w: load the AWS configuration: %v", persistence.ErrConfig, err)
	}
	if c.Region == "" {
		return c, fmt.Errorf("%w: no AWS region: set AWS_REGION (or a region in the AWS_PROFILE's shared configuration)", persistence.ErrConfig)
	}
	return c, nil
}
