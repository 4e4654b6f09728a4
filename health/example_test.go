package health_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/strata-go/strata/health"
	"github.com/strata-go/strata/observe"
)

// A readiness handler answers 503 with a report that says what is wrong.
func ExampleChecker() {
	behind := observe.LagFunc(func(context.Context) ([]observe.Lag, error) {
		return []observe.Lag{{Kind: observe.FollowerLag, Reader: "Counters", Upstream: "Worlds", Position: 10, Head: 5010, Behind: 5000, Age: time.Second}}, nil
	})
	checker := health.New(
		health.Store("Worlds", func(context.Context) error { return nil }),
		health.Lag(behind, 1000, time.Minute),
	)
	rec := httptest.NewRecorder()
	checker.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Println(rec.Code)
	for _, p := range checker.Report(context.Background()).Problems() {
		fmt.Println(p.Name+":", p.Problem)
	}
	// Output:
	// 503
	// follower Counters reading Worlds: 5000 notifications behind (at 10 of 5010), more than 1000
}
