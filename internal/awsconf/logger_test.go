package awsconf

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// The SDK's lines go to slog, except those of requests already ended.
func TestTheSDKLogsThroughSlogAndNotForEndedRequests(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	var l logging.Logger = sdkLogger{}
	l = logging.WithContext(context.Background(), l)
	l.Logf(logging.Warn, "response did not match expected checksum %d", 1)
	l.Logf(logging.Debug, "request %s", "sent")
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	logging.WithContext(ended, sdkLogger{}).Logf(logging.Warn, "failed to discard remaining HTTP response body")

	out := buf.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "AWS SDK: response did not match expected checksum 1") {
		t.Fatalf("the warning is not logged at warning level: %q", out)
	}
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "AWS SDK: request sent") {
		t.Fatalf("the debug line is not logged at debug level: %q", out)
	}
	if strings.Contains(out, "discard") {
		t.Fatalf("a line of an ended request is logged: %q", out)
	}
}
