package httpapi_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/strata-go/strata/persistence/sqlite"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// Following sections over HTTP reads exactly the local log, on every
// store: with PostgreSQL, notification IDs are sparse, so sections' IDs
// span far more IDs than they hold.
func TestSectionsOverHTTPReadTheWholeLogOnEveryStore(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{application.DefaultSectionSize, 4} {
		t.Run(fmt.Sprintf("section size %d", size), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, env map[string]string) {
				w := newWorlds(t, application.WithEnv(env), application.WithSectionSize(size))
				// A tenant's events, with headers, in the log of every tenant.
				acme, err := w.App().ForTenant("acme")
				if err != nil {
					t.Fatal(err)
				}
				world, _ := worlds.NewWorld()
				_ = world.MakeItSo("acme's")
				if _, err := acme.Save(application.ContextWithHeaders(ctx, persistence.Headers{"user": "ada"}), world); err != nil {
					t.Fatal(err)
				}
				storetest.WaitForLog(t, acme.Recorder(), 2)
				storetest.WaitForLog(t, w.App().Recorder(), 12)
				want, err := w.App().AllTenants().Select(ctx, 1, 100)
				if err != nil || len(want) != 14 || want[13].Tenant != "acme" || want[13].Headers["user"] != "ada" {
					t.Fatalf("the log of every tenant: %d notifications (%v)", len(want), err)
				}
				c := newClient(t, serve(t, w.App().AllTenants()).URL)
				for _, page := range []int{1, 5, 100} {
					var got []persistence.Notification
					for n, err := range system.NewNotificationLogReader(c, system.PageSize(page)).Read(ctx, 1) {
						if err != nil {
							t.Fatalf("read sections of %d: %v", page, err)
						}
						got = append(got, n)
					}
					sameNotifications(t, got, want)
				}
				s, err := c.Section(ctx, fmt.Sprintf("%d,%d", want[2].ID, want[2].ID+2))
				if err != nil {
					t.Fatal(err)
				}
				if n := min(3, size); len(s.Items) != n || s.ID != fmt.Sprintf("%d,%d", want[2].ID, want[2+n-1].ID) ||
					s.NextID != fmt.Sprintf("%d,%d", want[2+n-1].ID+1, want[2+n-1].ID+int64(n)) {
					t.Fatalf("section of three from notification %d: %+v", want[2].ID, s)
				}
			})
		})
	}
}

// A damaged row (an originator ID of the wrong length, a topic that is not
// UTF-8) does not make the sections that hold it fail: they serve what
// they have, and the reader that cannot decode the row is the one that
// says so.
func TestADamagedRowDoesNotFailItsSection(t *testing.T) {
	ctx := context.Background()
	env := storetest.Stores()[1].Env(t) // SQLite
	w := newWorlds(t, application.WithEnv(env))
	db, err := sql.Open(sqlite.DriverName, env["SQLITE_DBNAME"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO worlds_events (tenant, originator_id, originator_version, topic, state, commit_id, headers)
VALUES ('', ?, 1, 'World.Created', x'7b7d', x'', x''), ('', ?, 1, ?, x'7b7d', x'', x'')`,
		[]byte{1, 2, 3}, uuid.New().String()[:16], string([]byte{'W', 0xff, 'x'})); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, w.Log())
	resp, err := http.Get(srv.URL + "/sections/1,20")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a section with damaged rows: %d", resp.StatusCode)
	}
	s, err := newClient(t, srv.URL).Section(ctx, "1,20")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Items) != 14 || s.Items[12].OriginatorID != uuid.Nil || s.Items[13].Topic != "W\uFFFDx" {
		t.Fatalf("section with damaged rows: %d items, the 13th of %s, the 14th of topic %q", len(s.Items), s.Items[12].OriginatorID, s.Items[13].Topic)
	}
	if _, err := w.Mapper().ToEvent(s.Items[12].StoredEvent); err == nil {
		t.Fatal("a notification without a valid originator ID decoded")
	}
}
