package sqlstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type write struct {
	n     int
	group int // the group that ran it
}

// The writes queued while a group runs are taken by the next group, at
// most max at a time, each exactly once; an error of a leader before it
// takes any write is its own, and the others wait for the next leader.
func TestGroupCommitsQueuedWritesTogether(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	leads, groups := 0, 0
	g := NewGroup(1, 4, func(ctx context.Context, take func() ([]*write, bool)) error {
		mu.Lock()
		leads++
		lead := leads
		mu.Unlock()
		switch lead {
		case 1:
			<-release // the first group holds the database while the others queue
		case 2:
			return errors.New("no connection")
		}
		mu.Lock()
		groups++
		n := groups
		mu.Unlock()
		ws, _ := take()
		for _, w := range ws {
			if w.group != 0 {
				t.Errorf("write %d run twice", w.n)
			}
			w.group = n
		}
		return nil
	})
	ws := make([]*write, 10)
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &write{n: i}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.Do(context.Background(), ws[i])
		}()
		for i == 0 && len(g.slots) == 0 {
			time.Sleep(time.Millisecond) // the first write leads
		}
	}
	for g.Queued() < len(ws) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	leaderErrors, sizes := 0, map[int]int{}
	for i, w := range ws {
		switch {
		case errs[i] != nil && w.group == 0:
			leaderErrors++
		case errs[i] != nil:
			t.Errorf("write %d ran in group %d but got %v", i, w.group, errs[i])
		case w.group == 0:
			t.Errorf("write %d returned without running", i)
		default:
			sizes[w.group]++
		}
	}
	// The failed leader's error is its own write's, if that was still
	// queued (a write already run may lead a group for the others).
	if leaderErrors > 1 {
		t.Errorf("%d writes got the failed leader's error, want at most 1 (the leader's own)", leaderErrors)
	}
	if sizes[1] != 4 {
		t.Errorf("the first group ran %d writes, want 4 (all were queued, at most 4 a group)", sizes[1])
	}
	for n, size := range sizes {
		if size > 4 {
			t.Errorf("group %d ran %d writes, more than 4", n, size)
		}
	}
}

// A write whose context ends while it is queued leaves the queue and
// returns the context's error; it never runs.
func TestGroupWriteCancelledWhileQueued(t *testing.T) {
	release := make(chan struct{})
	g := NewGroup(1, 8, func(ctx context.Context, take func() ([]*write, bool)) error {
		<-release
		ws, _ := take()
		for _, w := range ws {
			w.group = 1
		}
		return nil
	})
	first, second := &write{n: 1}, &write{n: 2}
	done := make(chan error, 1)
	go func() { done <- g.Do(context.Background(), first) }()
	for len(g.slots) == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for g.Queued() < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := g.Do(ctx, second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", err)
	}
	close(release)
	if err := <-done; err != nil || first.group != 1 {
		t.Fatalf("the leader's write: %v, group %d", err, first.group)
	}
	if second.group != 0 {
		t.Fatal("the cancelled write ran")
	}
}

// With Gather, the leader of the next group waits for the writers of the
// last group to come back instead of leading a group of itself alone:
// four writes that were grouped once and save again one after the other
// are grouped again.
func TestGatherWaitsForTheWritersOfTheLastGroup(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	g := NewGroup(1, 8, func(ctx context.Context, take func() ([]*write, bool)) error {
		mu.Lock()
		first := len(sizes) == 0
		mu.Unlock()
		if first {
			<-release // the others queue behind the first leader
		}
		var ws []*write
		for more := true; more; {
			var more2 []*write
			more2, more = take()
			ws = append(ws, more2...)
		}
		mu.Lock()
		sizes = append(sizes, len(ws))
		mu.Unlock()
		if first {
			// A long first group makes the next leader's wait long
			// enough for the writes started after it on a busy machine.
			time.Sleep(2 * time.Second)
		}
		return nil
	})
	g.Gather()
	var wg sync.WaitGroup
	do := func(n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Do(context.Background(), &write{n: n}); err != nil {
				t.Error(err)
			}
		}()
	}
	for i := range 4 {
		do(i)
	}
	for g.Queued() < 4 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	do(4)
	for deadline := time.Now().Add(10 * time.Second); ; {
		g.mu.Lock()
		gathering := g.gathering
		g.mu.Unlock()
		if gathering {
			break
		}
		if time.Now().After(deadline) {
			wg.Wait()
			t.Fatalf("the next leader did not wait for the others: group sizes %v", sizes)
		}
		time.Sleep(time.Millisecond)
	}
	for i := 5; i < 8; i++ {
		do(i)
	}
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 4 || sizes[1] != 4 {
		t.Fatalf("group sizes %v, want [4 4]", sizes)
	}
}

// A gathering leader that takes again takes every write queued by then,
// not only as many as its group lacks to reach the last group's size: the
// writes are already waiting, and leaving them to the next group would
// cost them a durable flush of their own. (With 16 writers, groups had
// settled below 16 for that reason.)
func TestGatherTakesEveryQueuedWrite(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	var g *Group[*write]
	g = NewGroup(1, 8, func(ctx context.Context, take func() ([]*write, bool)) error {
		mu.Lock()
		n := len(sizes)
		mu.Unlock()
		if n == 0 {
			<-release // the first two writes queue behind the first leader
		}
		ws, more := take()
		if n == 1 {
			// The second leader has its own write; four more arrive
			// before it takes again.
			for g.Queued() < 4 {
				time.Sleep(time.Millisecond)
			}
		}
		for more {
			var next []*write
			next, more = take()
			ws = append(ws, next...)
		}
		mu.Lock()
		sizes = append(sizes, len(ws))
		mu.Unlock()
		if n == 0 {
			// A long first group gives the second leader a long gathering.
			time.Sleep(2 * time.Second)
		}
		return nil
	})
	g.Gather()
	var wg sync.WaitGroup
	do := func(n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Do(context.Background(), &write{n: n}); err != nil {
				t.Error(err)
			}
		}()
	}
	do(0)
	do(1)
	for g.Queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	do(2)
	for deadline := time.Now().Add(10 * time.Second); g.Queued() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second leader did not take its write")
		}
	}
	for i := 3; i < 7; i++ {
		do(i)
	}
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 2 || sizes[1] != 5 {
		t.Fatalf("group sizes %v, want [2 5]", sizes)
	}
}
