package sqlstore

// Page copies what a reader scans from a page of rows into values that
// outlive the rows, with fewer allocations than a copy per column: states
// are cut from one block of memory per many rows, and the tenant and topic
// of a row that has those of the row before share its strings. A catch-up
// read allocates per page what it used to allocate per row.
//
// Rows from one Page share blocks: a caller that changes a state changes
// only its own bytes (each piece's capacity is cut to its length), and a
// block lives as long as any state cut from it. The zero Page is ready
// to use; it is not safe for concurrent use.
type Page struct {
	block         []byte
	tenant, topic string
}

// pageBlock is the size of the blocks states are cut from; a state larger
// than a quarter of it gets a block of its own.
const pageBlock = 64 << 10

// Bytes returns a copy of b that outlives the rows; nil stays nil, and
// an empty b gives an empty, non-nil slice, as database/sql scans them.
func (p *Page) Bytes(b []byte) []byte {
	n := len(b)
	switch {
	case b == nil:
		return nil
	case n == 0:
		return []byte{}
	case n > pageBlock/4:
		return append([]byte(nil), b...)
	case n > len(p.block):
		p.block = make([]byte, pageBlock)
	}
	c := p.block[:n:n]
	copy(c, b)
	p.block = p.block[n:]
	return c
}

// Tenant returns b as a string, the previous row's if it is the same.
func (p *Page) Tenant(b []byte) string {
	if string(b) != p.tenant {
		p.tenant = string(b)
	}
	return p.tenant
}

// Topic returns b as a string, the previous row's if it is the same.
func (p *Page) Topic(b []byte) string {
	if string(b) != p.topic {
		p.topic = string(b)
	}
	return p.topic
}
