package keys

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
)

// cacheShards spreads the positive cache over independent locks, so replicas' request
// goroutines rarely contend.
const cacheShards = 32

// cache holds keys this process has recently seen, by the SHA-256 of the key presented,
// and a bounded set of hashes Redis did not know. Entries live until invalidated (pub/sub)
// or their ttl passes, whichever comes first; the ttl bounds staleness if an invalidation
// is ever missed.
type cache struct {
	shards [cacheShards]struct {
		sync.RWMutex
		m map[[sha256.Size]byte]cacheEntry
	}

	negMu  sync.Mutex
	neg    map[[sha256.Size]byte]int64 // hash -> until (Unix nanos)
	negMax int

	// gen counts invalidations. A lookup that started before one must not store what it
	// read, which may be the state the invalidation replaced.
	gen atomic.Uint64

	ttl, negTTL int64 // nanoseconds
}

type cacheEntry struct {
	key   *Key
	until int64 // Unix nanos
}

func newCache(ttl, negTTL int64, negMax int) *cache {
	c := &cache{ttl: ttl, negTTL: negTTL, negMax: negMax, neg: map[[sha256.Size]byte]int64{}}
	for i := range c.shards {
		c.shards[i].m = map[[sha256.Size]byte]cacheEntry{}
	}
	return c
}

// get returns the cached key for hash d, if fresh at now.
func (c *cache) get(d [sha256.Size]byte, now int64) (*Key, bool) {
	s := &c.shards[d[0]%cacheShards]
	s.RLock()
	e, ok := s.m[d]
	s.RUnlock()
	if !ok || e.until < now {
		return nil, false
	}
	return e.key, true
}

// put stores k for d unless an invalidation happened since gen was read.
func (c *cache) put(d [sha256.Size]byte, k *Key, gen uint64, now int64) {
	s := &c.shards[d[0]%cacheShards]
	s.Lock()
	if c.gen.Load() == gen {
		s.m[d] = cacheEntry{key: k, until: now + c.ttl}
	}
	s.Unlock()
}

// unknown reports whether d was recently found to be no key.
func (c *cache) unknown(d [sha256.Size]byte, now int64) bool {
	c.negMu.Lock()
	until, ok := c.neg[d]
	c.negMu.Unlock()
	return ok && until >= now
}

// putUnknown remembers that d is no key. The set is bounded: when full it is emptied,
// which costs the next lookups of those hashes one Redis round trip each.
func (c *cache) putUnknown(d [sha256.Size]byte, gen uint64, now int64) {
	c.negMu.Lock()
	if c.gen.Load() == gen {
		if len(c.neg) >= c.negMax {
			clear(c.neg)
		}
		c.neg[d] = now + c.negTTL
	}
	c.negMu.Unlock()
}

// invalidate forgets d, positive and negative.
func (c *cache) invalidate(d [sha256.Size]byte) {
	c.gen.Add(1)
	s := &c.shards[d[0]%cacheShards]
	s.Lock()
	delete(s.m, d)
	s.Unlock()
	c.negMu.Lock()
	delete(c.neg, d)
	c.negMu.Unlock()
}

// invalidateAll forgets everything: after a lost pub/sub connection, when invalidations
// may have been missed.
func (c *cache) invalidateAll() {
	c.gen.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.Lock()
		clear(s.m)
		s.Unlock()
	}
	c.negMu.Lock()
	clear(c.neg)
	c.negMu.Unlock()
}
