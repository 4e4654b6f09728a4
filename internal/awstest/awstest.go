// Package awstest gives tests a fresh DynamoDB table or S3 bucket on a
// local AWS emulator: moto's server (moto_server) on loopback.
//
// The endpoint is STRATA_TEST_AWS_ENDPOINT_URL, by default
// http://127.0.0.1:15000. If nothing answers there, Require starts moto
// there with motoserver.py (moto's server, one request at a time: see that
// file for why) and leaves it running for the next test binaries, as
// .ci/run does; if it still cannot be reached, tests that need it are
// skipped with a message, or fail when CI=true.
package awstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// DefaultEndpoint is the emulator's address unless
// STRATA_TEST_AWS_ENDPOINT_URL is set.
const DefaultEndpoint = "http://127.0.0.1:15000"

// Region is the region tests use; the emulator accepts any.
const Region = "us-east-1"

// Endpoint returns the emulator's URL.
func Endpoint() string {
	if u := os.Getenv("STRATA_TEST_AWS_ENDPOINT_URL"); u != "" {
		return u
	}
	return DefaultEndpoint
}

var (
	once        sync.Once
	unavailable error
)

func reachable(endpoint string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(endpoint + "/moto-api/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// start starts moto_server on the endpoint's port, in a session of its
// own so that it outlives the test binary, and waits until it answers.
func start(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return err
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return fmt.Errorf("python3 is not on the PATH")
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "motoserver.py")
	log, err := os.OpenFile(os.TempDir()+"/strata-moto-"+port+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(python, script, host, port)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() //nolint:errcheck // it runs on after the test binary
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := reachable(endpoint); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("moto started but does not answer after 30s (see %s): %w", log.Name(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Require skips the test, or fails it under CI=true, if the emulator
// cannot be reached or started.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() {
		if err := reachable(Endpoint()); err == nil {
			return
		}
		unavailable = start(Endpoint())
	})
	if unavailable == nil {
		return
	}
	msg := fmt.Sprintf("the AWS emulator is not available at %s (%v): install moto (pip install 'moto[server]') or set STRATA_TEST_AWS_ENDPOINT_URL", Endpoint(), unavailable)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Name returns a new name for a table or bucket: lower case letters,
// digits and hyphens, unique per call.
func Name(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
}

// Vars returns the SDK's usual environment for the emulator: endpoint,
// region and dummy credentials.
func Vars() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      Endpoint(),
		"AWS_REGION":            Region,
		"AWS_ACCESS_KEY_ID":     "test",
		"AWS_SECRET_ACCESS_KEY": "test",
	}
}

// Reset forgets every table and bucket of the emulator. Tests use fresh
// names instead; this is for a manual clean-up.
func Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, Endpoint()+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// motoRevision is the REVISION of motoserver.py that the DynamoDB tests
// need: the one whose transactions do not copy the table, without which
// the examples' concurrency tests run out of retries, whose queries do
// not sort it, and which applies a transaction once per client request
// token, so that the SDK's retries do not fail saves.
const motoRevision = "4"

var (
	revisionOnce sync.Once
	revisionErr  error
)

// revision checks that the emulator is motoserver.py at motoRevision. An
// emulator started by an older copy of the file keeps running after the
// file changes (Require and .ci/run leave it running for the next test
// binaries), and would fail the tests for no reason of theirs.
func revision() error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(Endpoint() + "/strata/motoserver")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); resp.StatusCode != http.StatusOK || got != motoRevision {
		return fmt.Errorf("the emulator at %s is not motoserver.py revision %s (it answers %d %q): an older motoserver.py started it; stop it so that the tests start the current one", Endpoint(), motoRevision, resp.StatusCode, got)
	}
	return nil
}

// DynamoDBEnv returns the environment of a fresh DynamoDB store for one
// test: a new table prefix, so that each application of the test has a
// table of its own, and the tables are deleted when the test ends. It
// skips the test, or fails it under CI=true, if the emulator is not the
// current motoserver.py.
func DynamoDBEnv(t testing.TB) map[string]string {
	t.Helper()
	Require(t)
	revisionOnce.Do(func() { revisionErr = revision() })
	if revisionErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(revisionErr)
		}
		t.Skip(revisionErr)
	}
	env := Vars()
	env["PERSISTENCE_MODULE"] = "dynamodb"
	env["DYNAMODB_TABLE_PREFIX"] = Name("t") + "_"
	t.Cleanup(func() { dropTables(t, env["DYNAMODB_TABLE_PREFIX"]) })
	return env
}

// S3Env returns the environment of a fresh S3 store for one test: a new
// bucket, emptied and deleted when the test ends.
func S3Env(t testing.TB) map[string]string {
	t.Helper()
	Require(t)
	env := Vars()
	env["PERSISTENCE_MODULE"] = "s3"
	env["S3_BUCKET"] = Name("b")
	t.Cleanup(func() { dropBucket(t, env["S3_BUCKET"]) })
	return env
}
