package sqlstore

import (
	"bytes"
	"testing"
)

// TestPageCopiesAreSeparate checks that states cut from one block can be
// appended to and changed without touching each other, and that empty and
// nil values keep the forms database/sql gives them.
func TestPageCopiesAreSeparate(t *testing.T) {
	var p Page
	if got := p.Bytes([]byte{}); got == nil {
		t.Fatal("an empty value before any other became nil")
	}
	src := []byte("aaaa")
	a := p.Bytes(src)
	src[0] = 'z'
	b := p.Bytes([]byte("bbbb"))
	_ = append(a, 'X', 'X')
	a[1] = 'Y'
	if string(b) != "bbbb" || string(a) != "aYaa" {
		t.Fatalf("a %q, b %q", a, b)
	}
	if got := p.Bytes(nil); got != nil {
		t.Fatalf("nil became %q", got)
	}
	if got := p.Bytes([]byte{}); got == nil || len(got) != 0 {
		t.Fatalf("empty became %#v", got)
	}
	big := bytes.Repeat([]byte{1}, pageBlock)
	if got := p.Bytes(big); !bytes.Equal(got, big) {
		t.Fatal("a state larger than a block is not copied whole")
	}
	if p.Tenant([]byte("t1")) != "t1" || p.Topic([]byte("x")) != "x" || p.Topic([]byte("y")) != "y" {
		t.Fatal("interned strings are not the rows'")
	}
}
