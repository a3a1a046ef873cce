package tracker

import (
	"encoding/json"
	"sync"
)

// destCache remembers decoded destination snapshots by their JSON text.
// Every page of an upload carries the same snapshot, and decoding it on each
// page was about 5 % of a worker's CPU. The text is the key, so an entry can
// never be stale; the cache is emptied when it reaches destCacheSize
// entries, which bounds it without bookkeeping.
type destCache struct {
	mu sync.RWMutex
	m  map[string]Destination
}

const destCacheSize = 4096

func (c *destCache) decode(raw string) (Destination, error) {
	c.mu.RLock()
	d, ok := c.m[raw]
	c.mu.RUnlock()
	if ok {
		return d, nil
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return Destination{}, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= destCacheSize {
		c.m = make(map[string]Destination, 64)
	}
	c.m[raw] = d
	c.mu.Unlock()
	return d, nil
}
