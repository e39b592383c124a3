package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
// Its reader owns the subscription from then on: when the connection
// fails (the master died, a failover, a restart) it subscribes again, on
// whichever master Sentinel names by then, and since notices published
// meanwhile are lost it then delivers one Change{All: true}, which drops
// every cached entry once. It does the same after it had to drop notices
// for a slow consumer.
type notifier struct {
	mu      sync.Mutex
	ps      *redis.PubSub // guarded by mu; the current subscription
	ch      chan Change   // guarded by mu; nil until started
	stopped bool          // guarded by mu
	cancel  context.CancelFunc
	done    chan struct{} // closed when the reader has stopped and closed ch
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
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := r.subscribe(ctx)
	if err != nil {
		cancel()
		r.log.Warn("index: subscribe to change notices", "err", err)
		return nil
	}
	n.ps, n.ch, n.cancel, n.done = ps, make(chan Change, noticeBuffer), cancel, make(chan struct{})
	go r.readNotices(ctx, ps, n.ch, n.done)
	return n.ch
}

// subscribe subscribes to the notices and waits for the server's
// confirmation, so that every commit after it is heard.
func (r *Redis) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ps := r.client.Subscribe(ctx, r.key(redisChanges))
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			ps.Close()
			return nil, err
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "subscribe" {
			return ps, nil
		}
	}
}

// readNotices hands the notices of ps, and of the subscriptions that
// replace it, to ch until the notifier stops.
func (r *Redis) readNotices(ctx context.Context, ps *redis.PubSub, ch chan<- Change, done chan<- struct{}) {
	defer close(done)
	defer close(ch)
	d := deliverer{ch: ch, log: r.log}
	for {
		err := r.receive(ctx, ps, &d)
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("index: change notices interrupted; subscribing again", "err", err)
		for attempt := 0; ; attempt++ {
			pause := min(50*time.Millisecond<<min(attempt, 5), time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			if ps, err = r.subscribe(ctx); err == nil {
				break
			}
		}
		if !r.notify.replace(ps) {
			ps.Close()
			return
		}
		r.log.Warn("index: change notices resumed; dropping every cached entry once, as notices may have been lost meanwhile")
		d.lost()
	}
}

// receive reads the subscription until it fails. A connection silent for
// the timeout is pinged, and one that does not answer within another
// timeout counts as failed (a master cut off without a reset).
func (r *Redis) receive(ctx context.Context, ps *redis.PubSub, d *deliverer) error {
	pinged := false
	var idle time.Duration
	for {
		wait := r.timeout
		if d.all {
			wait = 100 * time.Millisecond // to deliver it once there is room
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
				return err
			}
			d.flush()
			if idle += wait; idle < r.timeout {
				continue
			}
			idle = 0
			if pinged {
				return fmt.Errorf("no answer to a ping within %v", r.timeout)
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		idle, pinged = 0, false
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // the ping's answer, or a subscription's confirmation
		}
		origin, cs, err := decodeNotice([]byte(m.Payload))
		if err != nil {
			r.log.Warn("index: change notice", "err", err)
			continue
		}
		if origin == r.origin {
			continue
		}
		for _, c := range cs {
			d.send(c)
		}
	}
}

// deliverer hands changes to the consumer without ever blocking the
// subscription (Redis disconnects a subscriber whose output backs up).
// Once a change has been dropped, the next one that fits is
// Change{All: true} instead.
type deliverer struct {
	ch      chan<- Change
	log     *slog.Logger
	all     bool // a Change{All: true} is owed
	dropped int
}

func (d *deliverer) lost() {
	d.all = true
	d.flush()
}

// flush delivers an owed Change{All: true} if there is room.
func (d *deliverer) flush() {
	if !d.all {
		return
	}
	select {
	case d.ch <- Change{All: true}:
		d.all = false
	default:
	}
}

func (d *deliverer) send(c Change) {
	if d.flush(); d.all {
		return // the owed Change{All: true} covers c
	}
	select {
	case d.ch <- c:
	default:
		d.all = true
		if d.dropped++; d.dropped == 1 || d.dropped%10000 == 0 {
			d.log.Warn("index: change notices dropped, reader too slow; every cached entry will be dropped once", "dropped", d.dropped)
		}
	}
}

// replace makes ps the subscription that stop closes; false once stopped.
func (n *notifier) replace(ps *redis.PubSub) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return false
	}
	n.ps = ps
	return true
}

// stop ends the subscription and waits for the reader.
func (n *notifier) stop() {
	n.mu.Lock()
	ps, done, cancel := n.ps, n.done, n.cancel
	n.stopped = true
	n.mu.Unlock()
	if ps == nil {
		return
	}
	cancel()
	ps.Close()
	<-done
}
