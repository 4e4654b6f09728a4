package application_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

func TestSectionsOfTheNotificationLog(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	for range 5 {
		c := newCounter(t, "c") // 5 created events, then 5 increments
		_ = c.Increment(1)
		if _, err := app.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	log := app.Log()
	tests := []struct {
		section, id, next string
		n                 int
	}{
		{"1,10", "1,10", "11,20", 10},
		{"1,3", "1,3", "4,6", 3},
		{"4,6", "4,6", "7,9", 3},
		{"9,12", "9,10", "", 2},
		{"11,20", "", "", 0},
		{" 2 , 2 ", "2,2", "3,3", 1},
	}
	for _, tt := range tests {
		s, err := log.Section(ctx, tt.section)
		if err != nil {
			t.Fatalf("section %q: %v", tt.section, err)
		}
		if s.ID != tt.id || s.NextID != tt.next || len(s.Items) != tt.n {
			t.Fatalf("section %q: id %q next %q with %d items", tt.section, s.ID, s.NextID, len(s.Items))
		}
	}
	for _, bad := range []string{"", "a,b", "10,1", "1", "1,", ",5", "0,5", "-1,5", "1,2,3", "1;10"} {
		if _, err := log.Section(ctx, bad); !errors.Is(err, application.ErrSectionID) {
			t.Fatalf("section %q: got %v", bad, err)
		}
	}
	if s, err := log.Section(ctx, "1,1000"); err != nil || len(s.Items) != 10 {
		t.Fatalf("largest section: %v", err)
	}
	// A span larger than the section size asks for a section of the
	// section size, as the reference design's section_size does.
	if s, err := log.Section(ctx, "1,1000000000000"); err != nil || len(s.Items) != 10 || s.ID != "1,10" {
		t.Fatalf("section of a huge span: %+v %v", s, err)
	}
}

func TestTheSectionSizeBoundsSections(t *testing.T) {
	ctx := context.Background()
	app := newApp(t, application.WithSectionSize(4))
	for range 5 {
		if _, err := app.Save(ctx, newCounter(t, "c")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		section, id, next string
		n                 int
	}{
		{"1,10", "1,4", "5,8", 4},
		{"5,8", "5,5", "", 1},
		{"2,3", "2,3", "4,5", 2},
	}
	for _, tt := range tests {
		s, err := app.Log().Section(ctx, tt.section)
		if err != nil || s.ID != tt.id || s.NextID != tt.next || len(s.Items) != tt.n {
			t.Fatalf("section %q with a section size of 4: id %q next %q with %d items (%v), want %q %q %d", tt.section, s.ID, s.NextID, len(s.Items), err, tt.id, tt.next, tt.n)
		}
	}
	for _, n := range []int{0, -1, application.MaxLimit + 1} {
		if _, err := application.New(ctx, "Bad", application.WithSectionSize(n)); !errors.Is(err, persistence.ErrConfig) {
			t.Errorf("section size %d: %v", n, err)
		}
	}
}

func TestSelectsOfTheNotificationLog(t *testing.T) {
	ctx := context.Background()
	app := newApp(t)
	g, _ := domain.New[Gauge](domain.NewID(), GaugeInstalled{})
	c := newCounter(t, "c")
	_ = c.Increment(1)
	_ = c.Increment(1)
	_, _ = app.Save(ctx, c, g) // 1 started, 2-3 incremented, 4 gauge
	ids := func(start int64, limit int, opts ...application.SelectOption) string {
		t.Helper()
		ns, err := app.Log().Select(ctx, start, limit, opts...)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, n := range ns {
			out = append(out, n.ID)
		}
		return fmt.Sprint(out)
	}
	incremented, _ := app.Types().Lookup(Incremented{})
	for got, want := range map[string]string{
		ids(1, 10):                      "[1 2 3 4]",
		ids(0, 2):                       "[1 2]",
		ids(3, 10):                      "[3 4]",
		ids(1, 10, application.Stop(2)): "[1 2]",
		ids(1, 10, application.Topics(incremented.Topic())):                      "[2 3]",
		ids(1, 10, application.Topics("Counter", incremented.Topic())):           "[2 3]",
		ids(3, 10, application.Topics(incremented.Topic()), application.Stop(3)): "[3]",
	} {
		if got != want {
			t.Fatalf("selected %s, want %s", got, want)
		}
	}
	for _, q := range []struct {
		start int64
		limit int
		opts  []application.SelectOption
	}{{-1, 10, nil}, {1, 0, nil}, {1, -5, nil}, {1, 1001, nil}, {1, 10, []application.SelectOption{application.Topics("NoSuchTopic")}}} {
		if _, err := app.Log().Select(ctx, q.start, q.limit, q.opts...); !errors.Is(err, application.ErrQuery) {
			t.Fatalf("select %d %d: got %v", q.start, q.limit, err)
		}
	}
}
