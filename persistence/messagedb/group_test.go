package messagedb_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/internal/mdbtest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/messagedb"
	"github.com/strata-go/strata/system"
)

type groupConfig struct {
	URL          string
	Member, Size int
}

// TestConsumerGroupChild is the main of one follower process: Counters,
// following the Worlds category as member Member of a consumer group of
// Size, until its standard input closes.
func TestConsumerGroupChild(t *testing.T) {
	var cfg groupConfig
	childtest.Config(t, &cfg)
	ctx := context.Background()
	env := map[string]string{"PERSISTENCE_MODULE": "messagedb", "MESSAGEDB_URL": cfg.URL}
	f, err := messagedb.OpenEnv(ctx, persistence.NewEnv(worlds.Name, env))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	member, err := f.GroupMember(f.Category(), cfg.Member, cfg.Size)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := counters.System()
	if err != nil {
		t.Fatal(err)
	}
	runner := system.NewConcurrentRunner(sys, system.WithEnv(env), system.Hosting(counters.Name),
		system.WithRemoteLog(worlds.Name, application.NewLocalNotificationLog(member, nil).AcrossTenants()),
		system.PollInterval(20*time.Millisecond),
		system.WithAppOptions(counters.Name, application.WithEnv(map[string]string{
			"MESSAGEDB_CONSUMER_GROUP_MEMBER": fmt.Sprint(cfg.Member), "MESSAGEDB_CONSUMER_GROUP_SIZE": fmt.Sprint(cfg.Size)})))
	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, os.Stdin)
	if err := runner.Err(); err != nil {
		t.Error(err)
	}
	if err := runner.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// Three follower processes share the Worlds category as a consumer
// group: every message is processed exactly once, by the member that
// Message DB's get_category_messages gives it to.
func TestThreeFollowerProcessesShareACategory(t *testing.T) {
	childtest.SkipInChild(t)
	ctx := context.Background()
	url := mdbtest.Database(t)
	env := map[string]string{"PERSISTENCE_MODULE": "messagedb", "MESSAGEDB_URL": url}
	leader, err := worlds.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	var whats []string
	makeWorlds := func(n int) {
		for range n {
			id, err := leader.CreateWorld(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Unique things, so that no two members update one counter.
			for j := range 2 {
				what := fmt.Sprintf("%s-%d", id, j)
				whats = append(whats, what)
				if err := leader.MakeItSo(ctx, id, what); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	makeWorlds(20)
	const size = 3
	var children []*childtest.Child
	for m := range size {
		children = append(children, childtest.Start(t, "TestConsumerGroupChild", groupConfig{URL: url, Member: m, Size: size}))
	}
	makeWorlds(20) // while the followers run
	total := int64(len(whats) / 2 * 3)

	pool := raw(t, url)
	count := func(sql string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count("SELECT count(*) FROM strata.messagedb_tracking WHERE category = 'counters'") < total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications processed after two minutes", count("SELECT count(*) FROM strata.messagedb_tracking WHERE category = 'counters'"), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range children {
		c.Stdin.Close()
	}
	for i, c := range children {
		if err := c.Cmd.Wait(); err != nil {
			t.Fatalf("follower %d: %v\n%s", i, err, c.Output())
		}
	}

	// Each member processed exactly the messages Message DB gives it.
	for m := range size {
		group := fmt.Sprintf("%d/%d", m, size)
		mine := count("SELECT count(*) FROM get_category_messages('worlds', 1, -1, NULL, $1, $2)", m, size)
		tracked := count("SELECT count(*) FROM strata.messagedb_tracking WHERE category = 'counters' AND consumer_group = $1", group)
		wrong := count(`SELECT count(*) FROM strata.messagedb_tracking t WHERE t.category = 'counters' AND t.consumer_group = $1
AND NOT EXISTS (SELECT 1 FROM get_category_messages('worlds', t.notification_id, 1, NULL, $2, $3) g WHERE g.global_position = t.notification_id)`, group, m, size)
		if mine == 0 || tracked != mine || wrong != 0 {
			t.Fatalf("member %s: Message DB gives it %d messages; it tracked %d, %d of them another member's", group, mine, tracked, wrong)
		}
	}
	if n := count("SELECT count(DISTINCT notification_id) FROM strata.messagedb_tracking WHERE category = 'counters'"); n != total {
		t.Fatalf("%d distinct notifications tracked, want %d", n, total)
	}
	observer, err := counters.New(ctx, application.WithoutProcessEnv(), application.WithEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	for _, what := range whats {
		if n, err := observer.Count(ctx, what); err != nil || n != 1 {
			t.Fatalf("%s counted %d times (%v), want once", strings.TrimSpace(what), n, err)
		}
	}
}
