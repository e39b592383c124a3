package index

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Change notices. Every transaction that commits publishes, in its
// MULTI/EXEC, one message on P "changes" naming what it wrote: the inodes
// whose attributes it set or deleted and the entries it set or removed. A
// host that subscribes (by calling Changes) hears every other host's
// commits and drops what it cached about them. Pub/sub is at most once: a
// notice is lost while the subscription reconnects or when the reader falls
// behind, so a cache must still expire on its own.
//
// Notice, version 1:
//
//	version  byte (1)
//	origin   uvarint length + bytes (the publishing instance)
//	count    uvarint
//	count × (parent uvarint, name uvarint length + bytes, ino uvarint)
const noticeVersion = 1

// noticeBuffer is how many changes wait for a slow reader before newer
// ones are dropped.
const noticeBuffer = 4096

func encodeNotice(origin string, cs []Change) []byte {
	b := make([]byte, 0, 16+len(origin)+len(cs)*16)
	b = append(b, noticeVersion)
	b = appendString(b, origin)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = binary.AppendUvarint(b, uint64(c.Parent))
		b = appendString(b, c.Name)
		b = binary.AppendUvarint(b, uint64(c.Ino))
	}
	return b
}

func decodeNotice(v []byte) (origin string, cs []Change, err error) {
	r := reader{b: v}
	if ver := r.byte("version"); r.err == nil && ver != noticeVersion {
		return "", nil, corruptf("notice version %d", ver)
	}
	origin = r.string("origin")
	n := r.uvarint("count")
	if n > uint64(len(r.b)) {
		return "", nil, corruptf("notice of %d changes in %d bytes", n, len(r.b))
	}
	cs = make([]Change, 0, n)
	for range n {
		var c Change
		c.Parent = Ino(r.uvarint("parent"))
		c.Name = r.string("name")
		c.Ino = Ino(r.uvarint("ino"))
		cs = append(cs, c)
	}
	switch {
	case r.err != nil:
		return "", nil, r.err
	case len(r.b) != 0:
		return "", nil, corruptf("notice: %d trailing bytes", len(r.b))
	}
	return origin, cs, nil
}

// notifier is the subscription behind Changes, started by its first call.
type notifier struct {
	mu   sync.Mutex
	ps   *redis.PubSub // guarded by mu; nil until started
	ch   chan Change   // guarded by mu
	done chan struct{} // closed when the reader has stopped and closed ch
}

// Changes subscribes to the other hosts' notices on first use; the channel
// is closed by Close. It returns nil if the subscription cannot be made
// (the error is logged), and the mount then relies on cache expiry alone.
func (r *Redis) Changes() <-chan Change {
	// Lock order: r.mu, then n.mu (Close takes them in that order too).
	if err := r.enter(context.Background(), false); err != nil {
		return nil
	}
	defer r.mu.RUnlock()
	n := &r.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		return n.ch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := r.client.Subscribe(ctx, r.key(redisChanges))
	// Wait for the confirmation, so that every commit after this call is
	// heard.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		r.log.Warn("index: subscribe to change notices", "err", err)
		return nil
	}
	n.ps, n.ch, n.done = ps, make(chan Change, noticeBuffer), make(chan struct{})
	go r.readNotices(ps.Channel(redis.WithChannelSize(256)), n.ch, n.done)
	return n.ch
}

func (r *Redis) readNotices(msgs <-chan *redis.Message, ch chan<- Change, done chan<- struct{}) {
	defer close(done)
	defer close(ch)
	dropped := 0
	for m := range msgs {
		origin, cs, err := decodeNotice([]byte(m.Payload))
		if err != nil {
			r.log.Warn("index: change notice", "err", err)
			continue
		}
		if origin == r.origin {
			continue
		}
		for _, c := range cs {
			select {
			case ch <- c:
			default:
				// Never block the subscription: Redis disconnects a
				// subscriber whose output backs up.
				if dropped++; dropped == 1 || dropped%10000 == 0 {
					r.log.Warn("index: change notices dropped, reader too slow", "dropped", dropped)
				}
			}
		}
	}
}

// stop ends the subscription and waits for the reader.
func (n *notifier) stop() {
	n.mu.Lock()
	ps, done := n.ps, n.done
	n.mu.Unlock()
	if ps == nil {
		return
	}
	ps.Close()
	<-done
}
