// Package sqlitedrivers compares modernc.org/sqlite and github.com/mattn/go-sqlite3
// for the Strata event-store workload.
package sqlitedrivers

import (
	"database/sql"
	"fmt"
	"net/url"

	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
)

// Driver describes how to build DSNs for one driver.
type Driver struct {
	Name string // short label
	SQL  string // database/sql driver name
	DSN  func(path, sync string, readOnly bool) string
}

var Modernc = Driver{
	Name: "modernc",
	SQL:  "sqlite",
	DSN: func(path, sync string, ro bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", "foreign_keys(1)")
		q.Set("_txlock", "immediate")
		if ro {
			q.Add("_pragma", "query_only(1)")
		}
		return "file:" + path + "?" + q.Encode()
	},
}

var Mattn = Driver{
	Name: "mattn",
	SQL:  "sqlite3",
	DSN: func(path, sync string, ro bool) string {
		q := url.Values{}
		q.Set("_busy_timeout", "5000")
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", sync)
		q.Set("_foreign_keys", "1")
		q.Set("_txlock", "immediate")
		if ro {
			q.Set("_query_only", "1")
		}
		return "file:" + path + "?" + q.Encode()
	},
}

var Drivers = []Driver{Modernc, Mattn}

// Schema variants.
func Schema(autoinc bool, topicIndex bool) []string {
	pk := "INTEGER PRIMARY KEY"
	if autoinc {
		pk += " AUTOINCREMENT"
	}
	s := []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS bench_events (
  notification_id %s,
  originator_id BLOB NOT NULL,
  originator_version INTEGER NOT NULL,
  topic TEXT NOT NULL,
  state BLOB NOT NULL,
  UNIQUE (originator_id, originator_version))`, pk)}
	if topicIndex {
		s = append(s, `CREATE INDEX IF NOT EXISTS bench_events_topic ON bench_events (topic, notification_id)`)
	}
	return s
}

func Open(d Driver, path, sync string, ro bool) (*sql.DB, error) {
	return sql.Open(d.SQL, d.DSN(path, sync, ro))
}
