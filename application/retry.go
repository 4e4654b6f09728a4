package application

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/strata-go/strata/observe"
	"github.com/strata-go/strata/persistence"
)

var retryAttrs = attribute.NewSet()

// RetryOption configures [Retry].
type RetryOption func(*retryConfig)

type retryConfig struct {
	attempts    int
	attemptsSet bool
	within      time.Duration
	min, max    time.Duration
	on          func(error) bool
	tel         *observe.Telemetry
}

// RetryTelemetry makes Retry count its retries (the strata.retries metric,
// operation "retry") with t instead of observe.Default().
func RetryTelemetry(t *observe.Telemetry) RetryOption { return func(c *retryConfig) { c.tel = t } }

// Attempts sets how many times the command runs at most (default 4: the
// first try and 3 retries; no limit of attempts with [RetryFor] alone).
func Attempts(n int) RetryOption {
	return func(c *retryConfig) { c.attempts, c.attemptsSet = n, true }
}

// RetryFor bounds retrying by time rather than by attempts: the command
// runs again while it conflicts until d has passed since its first run,
// however many attempts that takes (with [Attempts] too, whichever limit
// comes first). Contention costs rounds of saves, and a store's saves
// take microseconds or tens of milliseconds, so a time limit holds its
// meaning from one store to another where a count does not.
func RetryFor(d time.Duration) RetryOption { return func(c *retryConfig) { c.within = d } }

// Backoff sets the wait before the first retry and the most any wait may
// be (default 50ms and 1s). Waits double and are jittered.
func Backoff(first, most time.Duration) RetryOption {
	return func(c *retryConfig) { c.min, c.max = first, most }
}

// RetryOn sets which errors are retried (default: conflicts, errors
// wrapping [ErrConflict]).
func RetryOn(f func(error) bool) RetryOption { return func(c *retryConfig) { c.on = f } }

// Retry runs command, and runs it again while it fails with a conflict
// (another writer saved the same aggregate first), after a growing wait.
// The command must load what it changes afresh on each run:
//
//	err := application.Retry(ctx, func(ctx context.Context) error {
//		account, err := accounts.Get(ctx, id)
//		if err != nil {
//			return err
//		}
//		if err := account.Deposit(amount); err != nil {
//			return err
//		}
//		_, err = app.Save(ctx, account)
//		return err
//	})
//
// It returns the command's last error, or the context's error if the
// context ends while waiting. Options out of range (fewer than one attempt,
// a negative wait, a first wait above the longest) are an error wrapping
// persistence.ErrConfig, and the command does not run.
func Retry(ctx context.Context, command func(ctx context.Context) error, opts ...RetryOption) error {
	c := retryConfig{attempts: 4, min: 50 * time.Millisecond, max: time.Second, on: func(err error) bool { return errors.Is(err, ErrConflict) }}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.attempts < 1:
		return fmt.Errorf("retry: %w: %d attempts, want at least 1", persistence.ErrConfig, c.attempts)
	case c.min < 0 || c.max < 0:
		return fmt.Errorf("retry: %w: backoff %v to %v is negative", persistence.ErrConfig, c.min, c.max)
	case c.min > c.max:
		return fmt.Errorf("retry: %w: backoff starts at %v, above its most, %v", persistence.ErrConfig, c.min, c.max)
	case c.on == nil:
		return fmt.Errorf("retry: %w: RetryOn(nil)", persistence.ErrConfig)
	case c.within < 0:
		return fmt.Errorf("retry: %w: RetryFor(%v) is negative", persistence.ErrConfig, c.within)
	}
	limited := c.attemptsSet || c.within == 0
	started := time.Now()
	wait := c.min
	for attempt := 1; ; attempt++ {
		err := command(ctx)
		if err == nil || (limited && attempt >= c.attempts) || !c.on(err) {
			return err
		}
		if c.within > 0 && time.Since(started)+wait/2 > c.within {
			return err // the next run would begin past the limit
		}
		observe.Or(c.tel).Retry(ctx, observe.OpRetry, retryAttrs)
		jittered := wait
		if wait > 1 {
			jittered = wait/2 + rand.N(wait/2+1)
		}
		t := time.NewTimer(jittered)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, c.max)
	}
}
