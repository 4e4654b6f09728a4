package natscluster_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/strata-go/strata/internal/natscluster"
)

// Without a nats-server to run, Start says so with an error that callers
// tell apart from a cluster that failed to start.
func ExampleStart() {
	old, had := os.LookupEnv("NATS_SERVER_BIN")
	os.Setenv("NATS_SERVER_BIN", "/nonexistent/nats-server")
	defer func() {
		if had {
			os.Setenv("NATS_SERVER_BIN", old)
		} else {
			os.Unsetenv("NATS_SERVER_BIN")
		}
	}()
	_, err := natscluster.Start()
	fmt.Println(errors.Is(err, natscluster.ErrNotInstalled))
	// Output:
	// true
}
