package s3

import (
	"strings"
	"sync"
)

// chunkCache holds the bodies of chunks this process read or wrote, by
// key, so that a read of an aggregate gets only the chunks it has not
// seen: on the examples' workloads a read of an aggregate of n saves was
// n+3 requests, most of them gets of chunks read before.
//
// A chunk is never changed once written: its key names the save's
// position and versions, its body is a function of that save's commit
// record, and every writer of it (the save's own, or the next writer
// indexing it) puts the same bytes with If-None-Match. Chunks are only
// deleted (by an eraser, or superseded by a replacing save), and a read
// takes a chunk only if a list made by that read returned its key, and
// only if no erase marker hides its position; so a cached body is never
// read where a get would not have returned the same bytes. Keys written
// before erasures existed (no position) are not cached: nothing ties
// their bodies to one save.
//
// The cache forgets what an erase marker erased as soon as the process
// learns of the marker, so that erased events do not stay in memory
// longer than the marker takes to reach it. It holds at most maxBytes of
// bodies and forgets the oldest first.
type chunkCache struct {
	mu       sync.Mutex
	bodies   map[string][]byte
	order    []string // keys, oldest first; may hold keys already forgotten
	bytes    int
	maxBytes int
}

// chunkCacheBytes bounds the bodies a factory keeps.
const chunkCacheBytes = 32 << 20

func newChunkCache(maxBytes int) *chunkCache {
	return &chunkCache{bodies: map[string][]byte{}, maxBytes: maxBytes}
}

// cacheable reports whether the key's body is tied to one save.
func cacheable(key string) bool { return len(lastSegment(key)) == 50 }

// get returns the body of a chunk the process has seen. The caller must
// not change it.
func (c *chunkCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bodies[key]
	return b, ok
}

// put remembers a chunk's body; the cache keeps b, which the caller must
// not change afterwards.
func (c *chunkCache) put(key string, b []byte) {
	if !cacheable(key) || len(b) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bodies[key]; ok {
		return
	}
	c.bodies[key] = b
	c.order = append(c.order, key)
	c.bytes += len(b)
	for c.bytes > c.maxBytes && len(c.order) > 0 {
		k := c.order[0]
		c.order = c.order[1:]
		if old, ok := c.bodies[k]; ok {
			c.bytes -= len(old)
			delete(c.bodies, k)
		}
	}
	if len(c.order) > 2*len(c.bodies)+64 {
		c.compact()
	}
}

// forget drops the chunks of an aggregate (id non-empty) or of a whole
// tenant, in every space: an erase marker erased them.
func (c *chunkCache) forget(tenant, id string) {
	seg := "/agg/" + tenantSeg(tenant) + "/"
	if id != "" {
		seg += id + "/"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, b := range c.bodies {
		if strings.Contains(k, seg) {
			c.bytes -= len(b)
			delete(c.bodies, k)
		}
	}
	c.compact()
}

// compact drops forgotten keys from the order.
func (c *chunkCache) compact() {
	keep := c.order[:0]
	for _, k := range c.order {
		if _, ok := c.bodies[k]; ok {
			keep = append(keep, k)
		}
	}
	clear(c.order[len(keep):])
	c.order = keep
}
