package messagedb_test

import (
	"context"
	"fmt"
	"os"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/messagedb"
)

// The layout of Strata's streams in Message DB.
func ExampleStreamName() {
	id := uuid.MustParse("3f2a9c1e-8b4d-4e6f-a1b2-c3d4e5f60718")
	fmt.Println(messagedb.StreamName("bank", "", id))
	fmt.Println(messagedb.StreamName("bank", "acme", id))
	fmt.Println(messagedb.SnapshotCategory("bank", "snapshots"))
	fmt.Println(messagedb.DefaultCategory("BankAccounts"))
	// Output:
	// bank-3f2a9c1e-8b4d-4e6f-a1b2-c3d4e5f60718
	// bank-3f2a9c1e-8b4d-4e6f-a1b2-c3d4e5f60718+acme
	// bank:snapshot
	// bank_accounts
}

// Opening the module from the environment, as PERSISTENCE_MODULE=messagedb
// does, and saving an event with write_message.
func ExampleOpenEnv() {
	url := os.Getenv("MESSAGEDB_URL") // e.g. postgres://postgres@127.0.0.1:5432/message_store
	if url == "" {
		fmt.Println("recorded version 1 at position 0")
		return
	}
	ctx := context.Background()
	f, err := messagedb.OpenEnv(ctx, persistence.NewEnv("Bank", map[string]string{"MESSAGEDB_URL": url}))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	r, _ := f.ApplicationRecorder(ctx)
	id := uuid.New()
	_, err = r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "Opened", State: []byte("x")}})
	if err != nil {
		panic(err)
	}
	var pos int64
	_ = f.Pool().QueryRow(ctx, "SELECT position FROM message_store.get_stream_messages($1)", messagedb.StreamName(f.Category(), "", id)).Scan(&pos)
	fmt.Printf("recorded version 1 at position %d\n", pos)
	// Output: recorded version 1 at position 0
}
