package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

func Example() {
	ctx := context.Background()
	types, _ := domain.NewRegistry(
		domain.AggregateType[Account](domain.Named("Account"), domain.CreatedBy(AccountOpened{})),
		domain.EventType[Deposited](domain.Named("Account.Deposited")),
	)
	store := persistence.NewEventStore(persistence.NewMapper(types), memory.NewRecorder())

	account, _ := domain.New[Account](uuid.New(), AccountOpened{Owner: "Alice"})
	_ = domain.Trigger(account, Deposited{Amount: decimal.RequireFromString("10.50")})
	ids, err := store.Put(ctx, account.CollectEvents())
	fmt.Println("notification IDs", ids, err)

	events, _ := store.Get(ctx, account.ID(), persistence.EventQuery{})
	for _, e := range events {
		fmt.Printf("v%d %T\n", e.OriginatorVersion, e.Data)
	}

	// A second writer that loaded version 1 and deposits too loses.
	_, err = store.Put(ctx, []domain.Event{{OriginatorID: account.ID(), OriginatorVersion: 2, Timestamp: time.Now().UTC(), Data: Deposited{}}})
	fmt.Println(errors.Is(err, persistence.ErrIntegrity))
	// Output:
	// notification IDs [1 2] <nil>
	// v1 persistence_test.AccountOpened
	// v2 persistence_test.Deposited
	// true
}

func ExampleCreateKey() {
	key, _ := persistence.CreateKey(32) // keep it safe, e.g. in CIPHER_KEY
	cipher, _ := persistence.NewAESCipherFromString(key)
	sealed, _ := cipher.Encrypt([]byte("account holder: Alice"))
	opened, _ := cipher.Decrypt(sealed)
	fmt.Println(string(opened))

	other, _ := persistence.CreateKey(32)
	wrong, _ := persistence.NewAESCipherFromString(other)
	_, err := wrong.Decrypt(sealed)
	fmt.Println(errors.Is(err, persistence.ErrWrongKey))
	// Output:
	// account holder: Alice
	// true
}

func ExampleNewTranscoding() {
	tc, _ := persistence.NewJSONTranscoder(dateAsISO)
	b, _ := tc.Marshal(struct{ Due Date }{Date{2024, 2, 29}})
	fmt.Println(string(b))
	// Output: {"Due":{"_type_":"date_iso","_data_":"2024-02-29"}}
}

func ExampleEnv() {
	env := persistence.NewEnv("Worlds",
		map[string]string{"SQLITE_DBNAME": "all.db", "WORLDS_SQLITE_DBNAME": "worlds.db"})
	fmt.Println(env.Get("SQLITE_DBNAME"))
	_, err := env.With(map[string]string{"CREATE_TABLE": "perhaps"}).Bool("CREATE_TABLE", true)
	fmt.Println(err)
	// Output:
	// worlds.db
	// invalid configuration: CREATE_TABLE="perhaps": not a truth value (want one of y, yes, t, true, on, 1, n, no, f, false, off, 0)
}

// A follower records the results of several upstream notifications, each
// with its tracking record, in one call: in one transaction on a recorder
// that records batches, all or nothing.
func ExampleInsertTracked() {
	ctx := context.Background()
	r := memory.NewRecorder()
	id := uuid.New()
	batch := []persistence.TrackedInsert{
		{Events: []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "Counted", State: []byte("{}")}},
			Tracking: persistence.Tracking{ApplicationName: "Worlds", NotificationID: 7}},
		{Events: []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 2, Topic: "Counted", State: []byte("{}")}},
			Tracking: persistence.Tracking{ApplicationName: "Worlds", NotificationID: 8}},
	}
	ids, err := persistence.InsertTracked(ctx, r, batch)
	fmt.Println(ids, err)

	// The same positions again: nothing is recorded, and the error says so.
	_, err = persistence.InsertTracked(ctx, r, batch)
	var be *persistence.BatchError
	fmt.Println(errors.Is(err, persistence.ErrIntegrity), errors.As(err, &be) && be.Recorded == 0)
	last, _ := r.MaxTrackingID(ctx, "Worlds")
	fmt.Println(last)
	// Output:
	// [[1] [2]] <nil>
	// true true
	// 8
}
