package domain_test

import (
	"bytes"
	"testing"

	"github.com/strata-go/strata/domain"
)

func TestNewIDsAreTimeOrdered(t *testing.T) {
	prev := domain.NewID()
	if prev.Version() != 7 {
		t.Fatalf("NewID made a version %d UUID, want 7", prev.Version())
	}
	for i := range 10_000 {
		id := domain.NewID()
		if bytes.Compare(id[:], prev[:]) <= 0 {
			t.Fatalf("ID %d, %s, does not sort after the one made before it, %s", i, id, prev)
		}
		prev = id
	}
}

func TestNewRandomIDsAreVersion4(t *testing.T) {
	a, b := domain.NewRandomID(), domain.NewRandomID()
	if a.Version() != 4 || b.Version() != 4 || a == b {
		t.Fatalf("NewRandomID made %s and %s, want two different version 4 UUIDs", a, b)
	}
}
