package s3

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/strata-go/strata/internal/awsconf"
	"github.com/strata-go/strata/persistence"
)

// Variables lists the environment variables the module reads.
var Variables = append([]string{"S3_BUCKET", "S3_PREFIX", "S3_USE_PATH_STYLE", "CREATE_TABLE", "READ_ONLY"}, awsconf.Variables("S3")...)

// DefaultPrefix starts the keys of every application unless S3_PREFIX
// says otherwise; the application's name follows it.
const DefaultPrefix = "strata/"

// MaxListPage is the most keys one ListObjectsV2 call returns.
const MaxListPage = 1000

// Config configures the S3 module.
type Config struct {
	// Bucket holds the application's objects. Required.
	Bucket string
	// Prefix starts every key of the application, so that applications
	// (and anything else) can share a bucket. It is used as given; the
	// environment makes it S3_PREFIX followed by the application's name
	// and a slash.
	Prefix string
	// AWS locates the service and gives the credentials.
	AWS awsconf.Settings
	// UsePathStyle puts the bucket in the URL's path rather than its host
	// name, as emulators and most S3-compatible servers need.
	UsePathStyle bool
	// CreateBucket creates the bucket if it does not exist.
	CreateBucket bool
	// ReadOnly creates nothing and refuses writes with an error wrapping
	// persistence.ErrReadOnly.
	ReadOnly bool
	// PageSize, if positive, is the most keys asked of one list call
	// (at most MaxListPage, the default). Tests make it small to prove
	// that every read follows every page.
	PageSize int
}

// bucketName is S3's rule for general purpose buckets, without the
// exceptions (IP-address-like names) that S3 itself refuses anyway.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ConfigFromEnv reads the module's variables. Values that cannot be
// parsed are errors that name the variable.
func ConfigFromEnv(env persistence.Env) (Config, error) {
	var c Config
	var err error
	if c.AWS, err = awsconf.FromEnv(env, "S3"); err != nil {
		return c, err
	}
	if c.CreateBucket, err = env.Bool("CREATE_TABLE", true); err != nil {
		return c, err
	}
	if c.ReadOnly, err = env.Bool("READ_ONLY", false); err != nil {
		return c, err
	}
	if c.UsePathStyle, err = env.Bool("S3_USE_PATH_STYLE", c.AWS.Endpoint != ""); err != nil {
		return c, err
	}
	c.Bucket = strings.TrimSpace(env.Get("S3_BUCKET"))
	_, name, _ := env.Lookup("S3_BUCKET")
	if name == "" {
		name = "S3_BUCKET"
	}
	if !bucketName.MatchString(c.Bucket) {
		return c, fmt.Errorf("%w: %s=%q is not an S3 bucket name (3 to 63 lower case letters, digits, '.' or '-')", persistence.ErrConfig, name, c.Bucket)
	}
	app := env.Name()
	if app == "" {
		app = "events"
	}
	c.Prefix = env.String("S3_PREFIX", DefaultPrefix) + escape(app) + "/"
	if len(c.Prefix) > 512 {
		_, name, _ := env.Lookup("S3_PREFIX")
		return c, fmt.Errorf("%w: %s: key prefix %.40q... is longer than 512 bytes", persistence.ErrConfig, name, c.Prefix)
	}
	return c, nil
}

// escape makes s one segment of a key: letters, digits, '-', '_' and '.'
// stay, everything else (the '/' that separates segments above all) is
// %XX. aett puts tenant and stream IDs into keys as they are, and splits
// on '_', so that an underscore in either breaks its parsing.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
