package awsconf

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/smithy-go/logging"
)

// sdkLogger passes the SDK's log lines to slog, as the rest of Strata
// logs, rather than to the SDK's default of standard error. Lines about a
// request whose context has ended are dropped: cancelling a request mid
// response makes the SDK warn that it could not drain or check the body,
// which is expected and would only alarm a command's user.
type sdkLogger struct {
	ctx context.Context // the request's, once the SDK gives it
}

// Logf logs one line of the SDK: warnings at slog's warning level, the
// rest at debug level.
func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	if l.ctx != nil && l.ctx.Err() != nil {
		return
	}
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	ctx := l.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	slog.Default().Log(ctx, level, "AWS SDK: "+fmt.Sprintf(format, v...))
}

// WithContext returns the logger of one request.
func (l sdkLogger) WithContext(ctx context.Context) logging.Logger { return sdkLogger{ctx: ctx} }
