package application_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

func TestSavingANilAggregateIsAnErrorNotAPanic(t *testing.T) {
	app := newApp(t)
	var typedNil *Counter
	for name, aggs := range map[string][]domain.Root{"a typed nil": {typedNil}, "a nil": {nil}, "a nil after a counter": {newCounter(t, "a"), typedNil}} {
		_, err := app.Save(context.Background(), aggs...)
		if !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "nil") {
			t.Errorf("save %s: %v, want an error wrapping ErrProgramming", name, err)
		}
	}
	if n, _ := app.Recorder().MaxNotificationID(context.Background()); n != 0 {
		t.Fatalf("a refused save recorded %d events", n)
	}
}

func TestRetryRefusesOptionsOutOfRange(t *testing.T) {
	ran := false
	command := func(context.Context) error { ran = true; return nil }
	for name, opt := range map[string]application.RetryOption{
		"a negative first wait":       application.Backoff(-time.Second, time.Second),
		"a negative longest wait":     application.Backoff(0, -time.Second),
		"a first wait above the most": application.Backoff(2*time.Second, time.Second),
		"no attempt":                  application.Attempts(0),
		"no test of which errors":     application.RetryOn(nil),
		"a negative time limit":       application.RetryFor(-time.Second),
	} {
		err := application.Retry(context.Background(), command, opt)
		if !errors.Is(err, persistence.ErrConfig) || ran {
			t.Errorf("%s: %v (command ran: %v), want an error wrapping ErrConfig", name, err, ran)
		}
	}
	calls := 0
	err := application.Retry(context.Background(), func(context.Context) error { calls++; return application.ErrConflict },
		application.Backoff(0, 0), application.Attempts(3))
	if !errors.Is(err, application.ErrConflict) || calls != 3 {
		t.Fatalf("zero waits: %v after %d calls", err, calls)
	}
}

// A time limit replaces the default count of attempts: the command runs
// as often as the time allows, and no run begins past the limit.
func TestRetryForBoundsRetriesByTime(t *testing.T) {
	calls := 0
	started := time.Now()
	err := application.Retry(context.Background(), func(context.Context) error { calls++; return application.ErrConflict },
		application.RetryFor(100*time.Millisecond), application.Backoff(time.Millisecond, 2*time.Millisecond))
	elapsed := time.Since(started)
	if !errors.Is(err, application.ErrConflict) {
		t.Fatalf("retry for 100ms of conflicts: %v", err)
	}
	if calls <= 4 {
		t.Fatalf("%d runs in 100ms of 1-2ms waits: the default count of attempts still applies", calls)
	}
	if elapsed < 100*time.Millisecond-2*time.Millisecond {
		t.Fatalf("gave up after %v of a 100ms limit, after %d runs", elapsed, calls)
	}
	// With Attempts too, whichever limit comes first.
	calls = 0
	err = application.Retry(context.Background(), func(context.Context) error { calls++; return application.ErrConflict },
		application.RetryFor(time.Minute), application.Attempts(3), application.Backoff(0, 0))
	if !errors.Is(err, application.ErrConflict) || calls != 3 {
		t.Fatalf("a minute or 3 attempts: %v after %d calls", err, calls)
	}
}

func TestAStoreWrittenWithOtherSettingsIsNotWrittenTo(t *testing.T) {
	ctx := context.Background()
	k1, _ := persistence.CreateKey(32)
	k2, _ := persistence.CreateKey(32)
	tests := []struct {
		name           string
		written, later map[string]string
		says           string
	}{
		{"another cipher key", map[string]string{"CIPHER_KEY": k1}, map[string]string{"CIPHER_KEY": k2}, "CIPHER_KEY is not the key"},
		{"no cipher key", map[string]string{"CIPHER_KEY": k1}, map[string]string{}, "CIPHER_KEY is not set"},
		{"a key for a store written without one", map[string]string{}, map[string]string{"CIPHER_KEY": k1}, "written without CIPHER_KEY"},
		{"no compressor", map[string]string{"COMPRESSOR_TOPIC": "zlib"}, map[string]string{}, "COMPRESSOR_TOPIC is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := memory.NewFactory()
			defer store.Close()
			first := newApp(t, application.WithFactory(store), application.WithEnv(tt.written))
			if _, err := first.Save(ctx, newCounter(t, "before")); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			later := newApp(t, application.WithFactory(store), application.WithEnv(tt.later), application.WithLogger(slogTo(&logged)))
			_, err := later.Save(ctx, newCounter(t, "after"))
			if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "records nothing") {
				t.Fatalf("save with %s: %v, want a refusal that says %q", tt.name, err, tt.says)
			}
			rec, _ := store.ApplicationRecorder(ctx)
			if n, _ := rec.MaxNotificationID(ctx); n != 1 {
				t.Fatalf("the store has %d notifications after the refused save, want 1", n)
			}
			if !strings.Contains(logged.String(), "saves are refused") {
				t.Fatalf("the refusal was not logged when the application opened: %q", logged.String())
			}
		})
	}
	t.Run("a new key that keeps the old one among its previous keys", func(t *testing.T) {
		store := memory.NewFactory()
		defer store.Close()
		first := newApp(t, application.WithFactory(store), application.WithEnv(map[string]string{"CIPHER_KEY": k1}))
		if _, err := first.Save(ctx, newCounter(t, "before")); err != nil {
			t.Fatal(err)
		}
		rotated, err := persistence.NewAESCipherFromString(k2, k1)
		if err != nil {
			t.Fatal(err)
		}
		later := newApp(t, application.WithFactory(store), application.WithMapperOptions(persistence.WithCipher(rotated)))
		if _, err := later.Save(ctx, newCounter(t, "after")); err != nil {
			t.Fatalf("save with a rotated key: %v", err)
		}
	})
}

func slogTo(w *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
