package system_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/internal/storetest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/system"
)

// stubLog is a notification log in memory that records what it is asked
// and can be made to fail. It answers as the local log does: a section
// "a,b" holds up to b-a+1 notifications from ID a.
type stubLog struct {
	notes []persistence.Notification
	// failFrom, if positive, makes requests that start at or after this
	// notification ID fail with errStub.
	failFrom int64

	mu    sync.Mutex
	calls []call
}

type call struct {
	method string // "section" or "select"
	start  int64
	limit  int
	topics []string
}

var errStub = errors.New("the log is down")

var topics = []string{"A", "B", "C"}

// newStubLog returns a log of n notifications whose IDs have gaps (every
// seventh ID is missing, as rolled-back transactions leave them) and whose
// topics cycle through A, B and C.
func newStubLog(n int) *stubLog {
	l := &stubLog{}
	id := int64(0)
	for i := range n {
		id++
		if id%7 == 0 {
			id++
		}
		l.notes = append(l.notes, persistence.Notification{ID: id, StoredEvent: persistence.StoredEvent{
			OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topics[i%len(topics)], State: []byte("{}")}})
	}
	return l
}

func (l *stubLog) record(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

func (l *stubLog) Calls() []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *stubLog) find(start int64, limit int, topics []string) ([]persistence.Notification, error) {
	if l.failFrom > 0 && start >= l.failFrom {
		return nil, fmt.Errorf("select from %d: %w", start, errStub)
	}
	var out []persistence.Notification
	for _, n := range l.notes {
		if len(out) == limit {
			break
		}
		if n.ID >= start && (len(topics) == 0 || slices.Contains(topics, n.Topic)) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (l *stubLog) Section(ctx context.Context, id string) (application.Section, error) {
	start, limit, err := application.ParseSectionID(id)
	if err != nil {
		return application.Section{}, err
	}
	l.record(call{method: "section", start: start, limit: limit})
	items, err := l.find(start, limit, nil)
	if err != nil {
		return application.Section{}, err
	}
	return application.SectionOf(items, limit), nil
}

func (l *stubLog) Select(ctx context.Context, start int64, limit int, opts ...application.SelectOption) ([]persistence.Notification, error) {
	c := application.NewSelectConfig(opts)
	l.record(call{method: "select", start: start, limit: limit, topics: c.Topics})
	if err := application.CheckSelect(start, limit); err != nil {
		return nil, err
	}
	return l.find(start, limit, c.Topics)
}

// want returns the IDs of the notifications from start on with one of
// topics (any topic if none).
func (l *stubLog) want(start int64, topics ...string) []int64 {
	out := []int64{}
	for _, n := range l.notes {
		if n.ID >= start && (len(topics) == 0 || slices.Contains(topics, n.Topic)) {
			out = append(out, n.ID)
		}
	}
	return out
}

// read ranges over seq, stopping after max notifications if max > 0, and
// returns the IDs and the errors it got.
func read(seq func(func(persistence.Notification, error) bool), max int) (got []int64, errs []error) {
	got = []int64{}
	for n, err := range seq {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got = append(got, n.ID)
		if max > 0 && len(got) == max {
			break
		}
	}
	return got, errs
}

func TestReaderReadsFromAnyStartWithAnyPageSize(t *testing.T) {
	ctx := context.Background()
	log := newStubLog(50) // IDs 1 to 57, without 7, 14, ...
	last := log.notes[len(log.notes)-1].ID
	for _, page := range []int{1, 3, 10, 49, 50, 51, 100, application.MaxLimit} {
		for _, start := range []int64{-1, 0, 1, 2, 7, 8, 10, 11, 50, last - 1, last, last + 1, 1000} {
			want := log.want(max(start, 1))
			r := system.NewNotificationLogReader(log, system.PageSize(page))
			t.Run(fmt.Sprintf("Read from %d by sections of %d", start, page), func(t *testing.T) {
				got, errs := read(r.Read(ctx, start), 0)
				if len(errs) > 0 || !slices.Equal(got, want) {
					t.Fatalf("got %v %v, want %v", got, errs, want)
				}
			})
			t.Run(fmt.Sprintf("Select from %d by pages of %d", start, page), func(t *testing.T) {
				got, errs := read(r.Select(ctx, start), 0)
				if len(errs) > 0 || !slices.Equal(got, want) {
					t.Fatalf("got %v %v, want %v", got, errs, want)
				}
			})
		}
	}
}

func TestReaderFiltersSelectsByTopic(t *testing.T) {
	ctx := context.Background()
	log := newStubLog(50)
	for _, filter := range [][]string{{"A"}, {"B"}, {"A", "C"}, {"A", "B", "C"}, {"D"}} {
		for _, page := range []int{1, 4, 17, 100} {
			for _, start := range []int64{1, 5, 30} {
				t.Run(fmt.Sprintf("topics %v from %d by pages of %d", filter, start, page), func(t *testing.T) {
					log.calls = nil
					r := system.NewNotificationLogReader(log, system.PageSize(page), system.FilterTopics(filter...))
					got, errs := read(r.Select(ctx, start), 0)
					if want := log.want(start, filter...); len(errs) > 0 || !slices.Equal(got, want) {
						t.Fatalf("got %v %v, want %v", got, errs, want)
					}
					for _, c := range log.Calls() {
						if !slices.Equal(c.topics, filter) {
							t.Fatalf("asked for topics %v, want %v", c.topics, filter)
						}
					}
					// Sections hold every notification: Read does not filter.
					got, errs = read(r.Read(ctx, start), 0)
					if want := log.want(start); len(errs) > 0 || !slices.Equal(got, want) {
						t.Fatalf("Read got %v %v, want %v", got, errs, want)
					}
				})
			}
		}
	}
}

// The reader holds one page: it asks for a page only when the previous one
// is used up, never for more than the page size, and asks for nothing more
// when the loop breaks.
func TestReaderAsksForOnePageAtATime(t *testing.T) {
	ctx := context.Background()
	const page = 10
	for _, method := range []string{"section", "select"} {
		for _, take := range []int{1, 9, 10, 11, 25, 50} {
			t.Run(fmt.Sprintf("%s breaking after %d", method, take), func(t *testing.T) {
				log := newStubLog(50)
				r := system.NewNotificationLogReader(log, system.PageSize(page))
				seq := r.Select(ctx, 1)
				if method == "section" {
					seq = r.Read(ctx, 1)
				}
				if len(log.Calls()) != 0 {
					t.Fatal("the reader asked the log before the loop began")
				}
				got, errs := read(seq, take)
				if want := log.want(1)[:take]; len(errs) > 0 || !slices.Equal(got, want) {
					t.Fatalf("got %v %v, want %v", got, errs, want)
				}
				calls := log.Calls()
				wantCalls := (take + page - 1) / page
				if len(calls) != wantCalls {
					t.Errorf("%d requests for %d notifications by pages of %d, want %d: %v", len(calls), take, page, wantCalls, calls)
				}
				next := int64(1)
				for i, c := range calls {
					if c.method != method || c.limit != page || c.start != next {
						t.Errorf("request %d: %+v, want a %s of %d from %d", i, c, method, page, next)
					}
					next = got[min((i+1)*page, len(got))-1] + 1
				}
			})
		}
	}
	t.Run("to the end", func(t *testing.T) {
		for _, n := range []int{0, 9, 10, 11, 50} {
			log := newStubLog(n)
			r := system.NewNotificationLogReader(log, system.PageSize(page))
			read(r.Select(ctx, 1), 0)
			// One more request than full pages: a page that is not full
			// ends the loop.
			if got, want := len(log.Calls()), n/page+1; got != want {
				t.Errorf("%d notifications: %d requests, want %d", n, got, want)
			}
		}
	})
	t.Run("page sizes are bounded", func(t *testing.T) {
		for _, c := range []struct{ size, want int }{{0, 1}, {-5, 1}, {1, 1}, {100, 100}, {application.MaxLimit, application.MaxLimit}, {application.MaxLimit + 1, application.MaxLimit}, {1 << 30, application.MaxLimit}} {
			log := newStubLog(3)
			read(system.NewNotificationLogReader(log, system.PageSize(c.size)).Select(ctx, 1), 0)
			read(system.NewNotificationLogReader(log, system.PageSize(c.size)).Read(ctx, 1), 0)
			for _, call := range log.Calls() {
				if call.limit != c.want {
					t.Errorf("PageSize(%d): asked for %d, want %d", c.size, call.limit, c.want)
				}
			}
		}
		log := newStubLog(3)
		read(system.NewNotificationLogReader(log).Select(ctx, 1), 0)
		if got := log.Calls()[0].limit; got != 100 {
			t.Errorf("default page size %d, want 100", got)
		}
	})
}

// A sequence can be ranged over again, and gives the same notifications.
func TestReaderSequencesCanBeRangedAgain(t *testing.T) {
	ctx := context.Background()
	log := newStubLog(30)
	r := system.NewNotificationLogReader(log, system.PageSize(4))
	for _, seq := range []func(func(persistence.Notification, error) bool){r.Read(ctx, 5), r.Select(ctx, 5)} {
		first, _ := read(seq, 0)
		second, _ := read(seq, 0)
		partial, _ := read(seq, 6)
		if !slices.Equal(first, log.want(5)) || !slices.Equal(second, first) || !slices.Equal(partial, first[:6]) {
			t.Errorf("ranging again gave %v, then %v and %v", first, second, partial)
		}
	}
}

func TestReaderYieldsTheLogsErrorAndStops(t *testing.T) {
	ctx := context.Background()
	for _, failFrom := range []int64{1, 2, 11, 23} {
		for _, page := range []int{1, 5, 10} {
			log := newStubLog(40)
			log.failFrom = failFrom
			r := system.NewNotificationLogReader(log, system.PageSize(page))
			for name, seq := range map[string]func(func(persistence.Notification, error) bool){"Read": r.Read(ctx, 1), "Select": r.Select(ctx, 1)} {
				t.Run(fmt.Sprintf("%s failing from %d by pages of %d", name, failFrom, page), func(t *testing.T) {
					var got []int64
					var errs []error
					for n, err := range seq {
						if err != nil {
							if n.ID != 0 {
								t.Errorf("the error came with notification %d", n.ID)
							}
							errs = append(errs, err)
							continue
						}
						if len(errs) > 0 {
							t.Fatalf("notification %d after the error", n.ID)
						}
						got = append(got, n.ID)
					}
					if len(errs) != 1 || !errors.Is(errs[0], errStub) {
						t.Fatalf("errors %v, want one wrapping %v", errs, errStub)
					}
					// Every notification of the pages that were read, none
					// after.
					want := log.want(1)
					n := 0 // the notifications of the pages asked for below failFrom
					for n < len(want) {
						start := int64(1)
						if n > 0 {
							start = want[n-1] + 1
						}
						if start >= failFrom {
							break
						}
						n = min(n+page, len(want))
					}
					if !slices.Equal(got, want[:n]) {
						t.Fatalf("got %v before the error, want %v", got, want[:n])
					}
				})
			}
		}
	}
	t.Run("a loop that breaks on the error", func(t *testing.T) {
		log := newStubLog(10)
		log.failFrom = 1
		for _, err := range system.NewNotificationLogReader(log).Select(ctx, 1) {
			if err == nil {
				t.Fatal("no error")
			}
			break // the reader must not yield again
		}
	})
}

// The reader reads a real application's log, with topics resolved by the
// application's types.
func TestReaderOfALocalLog(t *testing.T) {
	ctx := context.Background()
	app, err := worlds.New(ctx, application.WithoutProcessEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for range 3 {
		id := createWorld(t, app)
		happen(t, app, id, "dinosaurs", "trucks")
	}
	r := system.NewNotificationLogReader(app.Log(), system.PageSize(2), system.FilterTopics("World.Created"))
	got, errs := read(r.Select(ctx, 1), 0)
	if want := []int64{1, 4, 7}; len(errs) > 0 || !slices.Equal(got, want) {
		t.Errorf("World.Created at %v %v, want %v", got, errs, want)
	}
	got, errs = read(r.Read(ctx, 3), 0)
	if want := []int64{3, 4, 5, 6, 7, 8, 9}; len(errs) > 0 || !slices.Equal(got, want) {
		t.Errorf("Read from 3: %v %v, want %v", got, errs, want)
	}

	_, errs = read(system.NewNotificationLogReader(app.Log(), system.FilterTopics("World.Destroyed")).Select(ctx, 1), 0)
	if len(errs) != 1 || !errors.Is(errs[0], application.ErrQuery) {
		t.Errorf("select of an unknown topic: %v, want an error wrapping ErrQuery", errs)
	}

	app.Close()
	for name, seq := range map[string]func(func(persistence.Notification, error) bool){"Read": r.Read(ctx, 1), "Select": r.Select(ctx, 1)} {
		if got, errs := read(seq, 0); len(got) > 0 || len(errs) != 1 || !errors.Is(errs[0], persistence.ErrPersistence) {
			t.Errorf("%s of a closed log: %v %v, want one error", name, got, errs)
		}
	}
}

// The reader reads every store's log alike: from any start, filtered by
// topic, and again.
func TestReaderOfEveryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, env map[string]string) {
		ctx := context.Background()
		app, err := worlds.New(ctx, application.WithEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		for range 5 {
			id := createWorld(t, app)
			happen(t, app, id, "dinosaurs", "trucks")
		}
		all := logIDs(t, app.Log())
		if len(all) != 15 {
			t.Fatalf("%d notifications, want 15", len(all))
		}
		var created []int64
		for i := 0; i < len(all); i += 3 {
			created = append(created, all[i])
		}
		type run struct {
			name string
			seq  func(func(persistence.Notification, error) bool)
			want []int64
		}
		var runs []run
		for _, page := range []int{1, 2, 100} {
			for _, from := range []int{0, 1, 7, 14} {
				start := all[from]
				r := system.NewNotificationLogReader(app.Log(), system.PageSize(page))
				f := system.NewNotificationLogReader(app.Log(), system.PageSize(page), system.FilterTopics("World.Created"))
				runs = append(runs,
					run{fmt.Sprintf("Read from %d by %d", start, page), r.Read(ctx, start), all[from:]},
					run{fmt.Sprintf("Select from %d by %d", start, page), r.Select(ctx, start), all[from:]},
					run{fmt.Sprintf("Select World.Created from %d by %d", start, page), f.Select(ctx, start), created[(from+2)/3:]})
			}
		}
		for _, r := range runs {
			if got, errs := read(r.seq, 0); len(errs) > 0 || !slices.Equal(got, r.want) {
				t.Fatalf("%s: %v %v, want %v", r.name, got, errs, r.want)
			}
		}
		t.Run("again", func(t *testing.T) {
			for _, r := range runs {
				if got, errs := read(r.seq, 0); len(errs) > 0 || !slices.Equal(got, r.want) {
					t.Fatalf("%s, again: %v %v, want %v", r.name, got, errs, r.want)
				}
			}
		})
	})
}
