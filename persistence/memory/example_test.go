package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

func Example() {
	ctx := context.Background()
	rec := memory.NewRecorder()
	id := uuid.New()
	ids, _ := rec.InsertEvents(ctx, []persistence.StoredEvent{
		{OriginatorID: id, OriginatorVersion: 1, Topic: "Created", State: []byte(`{}`)},
		{OriginatorID: id, OriginatorVersion: 2, Topic: "Renamed", State: []byte(`{"name":"x"}`)},
	})
	fmt.Println("notification IDs", ids)

	// A second event at version 2 conflicts: nothing of that save is kept.
	_, err := rec.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "Renamed"}})
	fmt.Println(errors.Is(err, persistence.ErrIntegrity))

	ns, _ := rec.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: 10, Topics: []string{"Renamed"}})
	fmt.Println(len(ns), ns[0].ID, string(ns[0].State))
	// Output:
	// notification IDs [1 2]
	// true
	// 1 2 {"name":"x"}
}
