package postgres

import (
	"testing"

	"github.com/strata-go/strata/persistence"
)

// A page's rows keep their places across blocks, and a page filled again
// gives each row a zeroed notification, not the last page's.
func TestStreamRowsSpanBlocksAndAreRefilledZeroed(t *testing.T) {
	var p streamRows
	for i := range 3*streamBlock + 7 {
		n := p.add()
		n.ID, n.Topic, n.Headers = int64(i), "first", persistence.Headers{"k": "v"}
	}
	if len(p.blocks) != 4 {
		t.Fatalf("%d rows in %d blocks, want 4", p.n, len(p.blocks))
	}
	for i := range p.n {
		if id := p.at(i).ID; id != int64(i) {
			t.Fatalf("row %d has ID %d", i, id)
		}
	}
	p.n = 0
	for i := range streamBlock + 1 {
		n := p.add()
		if n.Topic != "" || n.Headers != nil || n.ID != 0 {
			t.Fatalf("row %d of the second page is %+v, want a zero notification", i, *n)
		}
		n.ID = int64(-i)
	}
	if len(p.blocks) != 4 || p.at(streamBlock).ID != -streamBlock || p.at(streamBlock+1).ID != streamBlock+1 {
		t.Fatalf("the second page took %d blocks; row %d is %d, row %d (of the first page) %d", len(p.blocks), streamBlock, p.at(streamBlock).ID, streamBlock+1, p.at(streamBlock+1).ID)
	}
	// What the first page left beyond the second is cleared, so that it
	// keeps none of the first page's states alive.
	p.trim()
	for i := p.n; i < 3*streamBlock+7; i++ {
		if n := p.at(i); n.ID != 0 || n.Topic != "" || n.Headers != nil {
			t.Fatalf("row %d, beyond the second page, still holds %+v after trim", i, *n)
		}
	}
	if p.at(streamBlock).ID != -streamBlock {
		t.Fatalf("trim cleared row %d of the page in hand", streamBlock)
	}
}
