package s3_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/s3"
)

// An application selects S3 by its environment alone.
func Example() {
	env := awstest.Vars() // AWS_ENDPOINT_URL, AWS_REGION and credentials
	env["PERSISTENCE_MODULE"] = "s3"
	env["S3_BUCKET"] = awstest.Name("example")
	ctx := context.Background()
	f, err := persistence.OpenFactory(ctx, persistence.NewEnv("Worlds", env))
	if err != nil {
		fmt.Println(err) // the emulator is not running: see internal/awstest
		return
	}
	defer f.Close()
	r, _ := f.ApplicationRecorder(ctx)
	id := uuid.New()
	ids, err := r.InsertEvents(ctx, []persistence.StoredEvent{
		{OriginatorID: id, OriginatorVersion: 1, Topic: "Created", State: []byte(`{}`)},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "Renamed", State: []byte(`{"name":"x"}`)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The first save is at log position 1: notification IDs 10001, 10002.
	fmt.Printf("recorded %d events at notifications %v\n", len(ids), ids)
	// Output: recorded 2 events at notifications [10001 10002]
}
