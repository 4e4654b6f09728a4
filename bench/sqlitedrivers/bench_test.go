package sqlitedrivers

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const insertSQL = `INSERT INTO bench_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)`

const notificationSQL = `SELECT notification_id, originator_id, originator_version, topic, state
FROM bench_events WHERE notification_id >= ? AND topic IN (?, ?, ?, ?)
ORDER BY notification_id LIMIT ?`

const aggregateSQL = `SELECT notification_id, originator_id, originator_version, topic, state
FROM bench_events WHERE originator_id = ? ORDER BY originator_version`

var topics = []string{
	"strata.bench:Account.Opened",
	"strata.bench:Account.Credited",
	"strata.bench:Account.Debited",
	"strata.bench:Account.Closed",
}

var state = func() []byte {
	b := make([]byte, 200)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}()

var oidSeq atomic.Uint64
var runPrefix = rand.Uint64()

// newOID returns a fresh 16-byte originator id (UUID-sized blob).
func newOID() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[:8], runPrefix)
	binary.BigEndian.PutUint64(b[8:], oidSeq.Add(1))
	return b
}

func aggOID(i int) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[:8], 0xA66)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return b
}

func tmpDir(b testing.TB) string {
	base := os.Getenv("BENCH_TMP")
	if base == "" {
		base = "tmp"
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		b.Fatal(err)
	}
	d, err := os.MkdirTemp(abs, "db")
	if err != nil {
		b.Fatal(err)
	}
	return d
}

type store struct {
	w, r *sql.DB
	path string
}

func (s *store) Close() { s.w.Close(); s.r.Close() }

// arrangement: "split" = writer pool of exactly 1 conn + separate read-only pool;
// "onepool" = one pool, unlimited conns, SQLite busy handler arbitrates writers.
func newStore(b testing.TB, d Driver, sync string, autoinc, topicIdx bool, arrangement string) *store {
	dir := tmpDir(b)
	path := filepath.Join(dir, "events.db")
	w, err := Open(d, path, sync, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range Schema(autoinc, topicIdx) {
		if _, err := w.Exec(s); err != nil {
			b.Fatal(err)
		}
	}
	var r *sql.DB
	switch arrangement {
	case "split":
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		r, err = Open(d, path, sync, true)
		if err != nil {
			b.Fatal(err)
		}
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
	case "onepool":
		w.SetMaxOpenConns(0)
		w.SetMaxIdleConns(32) // default of 2 would churn connections under 16 writers
		r = w
	default:
		b.Fatal("bad arrangement")
	}
	b.Cleanup(func() {
		w.Close()
		if r != w {
			r.Close()
		}
		os.RemoveAll(dir)
	})
	return &store{w: w, r: r, path: path}
}

func isBusy(err error) bool {
	if err == nil {
		return false
	}
	return classify(err) == "busy"
}

func saveOne(ctx context.Context, db *sql.DB, oid []byte) error {
	tx, err := db.BeginTx(ctx, nil) // _txlock=immediate => BEGIN IMMEDIATE
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertSQL, oid, 1, topics[0], state); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

var syncModes = []string{"NORMAL", "FULL"}

// a) single-event save, 1 writer.
func BenchmarkSave1(b *testing.B) {
	ctx := context.Background()
	for _, sm := range syncModes {
		for _, autoinc := range []bool{true, false} {
			for _, d := range drivers() {
				pk := "rowid"
				if autoinc {
					pk = "autoinc"
				}
				b.Run(fmt.Sprintf("sync=%s/pk=%s/driver=%s", sm, pk, d.Name), func(b *testing.B) {
					s := newStore(b, d, sm, autoinc, false, "split")
					b.ReportAllocs()
					b.ResetTimer()
					stopCPU := cpuMeter(b)
					for i := 0; i < b.N; i++ {
						if err := saveOne(ctx, s.w, newOID()); err != nil {
							b.Fatal(err)
						}
					}
					stopCPU()
				})
			}
		}
	}
}

// a) single-event save, 16 concurrent writer goroutines.
func BenchmarkSave16(b *testing.B) {
	ctx := context.Background()
	for _, sm := range syncModes {
		for _, arr := range []string{"split", "onepool"} {
			for _, d := range drivers() {
				b.Run(fmt.Sprintf("sync=%s/pool=%s/driver=%s", sm, arr, d.Name), func(b *testing.B) {
					s := newStore(b, d, sm, true, false, arr)
					var busy, other atomic.Int64
					var firstErr atomic.Value
					b.ReportAllocs()
					b.SetParallelism(16 / max(1, runtimeProcs()))
					b.ResetTimer()
					stopCPU := cpuMeter(b)
					var latMu sync.Mutex
					var lats []time.Duration
					b.RunParallel(func(pb *testing.PB) {
						local := make([]time.Duration, 0, 1024)
						defer func() { latMu.Lock(); lats = append(lats, local...); latMu.Unlock() }()
						for pb.Next() {
							t0 := time.Now()
							err := saveOne(ctx, s.w, newOID())
							local = append(local, time.Since(t0))
							if err != nil {
								if isBusy(err) {
									busy.Add(1)
								} else {
									other.Add(1)
									firstErr.CompareAndSwap(nil, err.Error())
								}
							}
						}
					})
					b.StopTimer()
					stopCPU()
					b.ReportMetric(float64(busy.Load())/float64(b.N), "busy/op")
					slices.Sort(lats)
					if len(lats) > 0 {
						b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
						b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
						b.ReportMetric(float64(lats[len(lats)-1].Microseconds()), "max-µs")
					}
					if other.Load() > 0 {
						b.Fatalf("%d non-busy errors, first: %v", other.Load(), firstErr.Load())
					}
				})
			}
		}
	}
}

// b) 100-event save in one transaction.
func BenchmarkSave100(b *testing.B) {
	ctx := context.Background()
	var sb strings.Builder
	sb.WriteString(`INSERT INTO bench_events (originator_id, originator_version, topic, state) VALUES `)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?, ?, ?, ?)")
	}
	multiSQL := sb.String()
	for _, sm := range syncModes {
		for _, method := range []string{"prepared", "multirow"} {
			for _, d := range drivers() {
				b.Run(fmt.Sprintf("sync=%s/method=%s/driver=%s", sm, method, d.Name), func(b *testing.B) {
					s := newStore(b, d, sm, true, false, "split")
					args := make([]any, 400)
					b.ReportAllocs()
					b.ResetTimer()
					stopCPU := cpuMeter(b)
					for i := 0; i < b.N; i++ {
						oid := newOID()
						tx, err := s.w.BeginTx(ctx, nil)
						if err != nil {
							b.Fatal(err)
						}
						switch method {
						case "prepared":
							st, err := tx.PrepareContext(ctx, insertSQL)
							if err != nil {
								b.Fatal(err)
							}
							for v := 1; v <= 100; v++ {
								if _, err := st.ExecContext(ctx, oid, v, topics[v%4], state); err != nil {
									b.Fatal(err)
								}
							}
							st.Close()
						case "multirow":
							for v := 1; v <= 100; v++ {
								j := (v - 1) * 4
								args[j], args[j+1], args[j+2], args[j+3] = oid, v, topics[v%4], state
							}
							if _, err := tx.ExecContext(ctx, multiSQL, args...); err != nil {
								b.Fatal(err)
							}
						}
						if err := tx.Commit(); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					stopCPU()
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
				})
			}
		}
	}
}

const (
	nAggs       = 100
	eventsPerAg = 1000
	totalRows   = nAggs * eventsPerAg
)

var readDBs sync.Map // key -> *store

// readStore returns a store (reader pool) holding 100,000 events: 100
// aggregates x 1,000 versions, interleaved in notification order.
func readStore(b *testing.B, d Driver, topicIdx bool) *store {
	key := fmt.Sprintf("%s/%v", d.Name, topicIdx)
	if v, ok := readDBs.Load(key); ok {
		return v.(*store)
	}
	dir, _ := filepath.Abs("tmp")
	path := filepath.Join(dir, fmt.Sprintf("read-%s-%v.db", d.Name, topicIdx))
	if _, err := os.Stat(path); err == nil {
		r, err := Open(d, path, "NORMAL", true)
		if err != nil {
			b.Fatal(err)
		}
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
		s := &store{w: r, r: r, path: path}
		readDBs.Store(key, s)
		return s
	}
	w, err := Open(d, path+".tmp", "NORMAL", false)
	if err != nil {
		b.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	for _, s := range Schema(true, topicIdx) {
		if _, err := w.Exec(s); err != nil {
			b.Fatal(err)
		}
	}
	for v := 1; v <= eventsPerAg; v++ {
		tx, err := w.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare(insertSQL)
		if err != nil {
			b.Fatal(err)
		}
		for a := 0; a < nAggs; a++ {
			if _, err := st.Exec(aggOID(a), v, topics[(a+v)%4], state); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	w.Close()
	for _, suf := range []string{"-wal", "-shm"} {
		os.Remove(path + ".tmp" + suf)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	w = nil
	r, err := Open(d, path, "NORMAL", true)
	if err != nil {
		b.Fatal(err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	s := &store{w: r, r: r, path: path}
	readDBs.Store(key, s)
	return s
}

type row struct {
	id      int64
	oid     []byte
	version int64
	topic   string
	state   []byte
}

// c) catch-up read of 100,000 rows in pages of 1,000.
func BenchmarkCatchUp(b *testing.B) {
	ctx := context.Background()
	for _, ti := range topicIdxModes() {
		for _, d := range drivers() {
			b.Run(fmt.Sprintf("topicidx=%v/driver=%s", ti, d.Name), func(b *testing.B) {
				s := readStore(b, d, ti)
				b.ReportAllocs()
				b.ResetTimer()
				stopCPU := cpuMeter(b)
				for i := 0; i < b.N; i++ {
					next := int64(1)
					n := 0
					for {
						rows, err := s.r.QueryContext(ctx, notificationSQL, next, topics[0], topics[1], topics[2], topics[3], 1000)
						if err != nil {
							b.Fatal(err)
						}
						got := 0
						var r row
						for rows.Next() {
							if err := rows.Scan(&r.id, &r.oid, &r.version, &r.topic, &r.state); err != nil {
								b.Fatal(err)
							}
							got++
							next = r.id + 1
						}
						if err := rows.Err(); err != nil {
							b.Fatal(err)
						}
						rows.Close()
						n += got
						if got < 1000 {
							break
						}
					}
					if n != totalRows {
						b.Fatalf("read %d rows", n)
					}
				}
				b.StopTimer()
				stopCPU()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*totalRows), "ns/row")
			})
		}
	}
}

// d) read one aggregate's 1,000 events.
func BenchmarkAggregate(b *testing.B) {
	ctx := context.Background()
	for _, d := range drivers() {
		b.Run(fmt.Sprintf("driver=%s", d.Name), func(b *testing.B) {
			s := readStore(b, d, false)
			b.ReportAllocs()
			b.ResetTimer()
			stopCPU := cpuMeter(b)
			for i := 0; i < b.N; i++ {
				rows, err := s.r.QueryContext(ctx, aggregateSQL, aggOID(i%nAggs))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				var r row
				for rows.Next() {
					if err := rows.Scan(&r.id, &r.oid, &r.version, &r.topic, &r.state); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				rows.Close()
				if n != eventsPerAg {
					b.Fatalf("read %d rows", n)
				}
			}
			stopCPU()
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	readDBs.Range(func(k, v any) bool {
		v.(*store).r.Close()
		return true
	})
	os.Exit(code)
}

// drivers returns the drivers in the order given by BENCH_ORDER ("reverse" puts mattn first).
func drivers() []Driver {
	if os.Getenv("BENCH_ORDER") == "reverse" {
		return []Driver{Mattn, Modernc}
	}
	return Drivers
}

func topicIdxModes() []bool {
	if os.Getenv("BENCH_TOPICIDX") == "1" {
		return []bool{false, true}
	}
	return []bool{false}
}
