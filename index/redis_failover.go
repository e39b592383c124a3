package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Losing the server. Every call of the engine runs within the network
// timeout (Redis.timeout). A call that finds the master unreachable (down,
// restarting, or a Sentinel failover under way: refused or dropped
// connections, READONLY from a demoted master, no Sentinel answering) runs
// again, with a growing pause, until the master answers or the timeout is
// spent; then it fails with an error that the FUSE layer turns into EIO.
// A call never hangs past the timeout, and a retried call is always one
// that changed nothing: reads, and transactions that failed before their
// EXEC went out. A transaction whose EXEC was sent but not answered may or
// may not have been applied, so it fails at once (uncertainError): running
// it again could report a create that succeeded as EEXIST.
//
// With wait=N (Redis.wait) a transaction that wrote something is followed,
// on the same connection, by WAIT N: the call returns only once N replicas
// hold the change, so a failover to one of them cannot lose it. A change
// that is not confirmed within the timeout is on the master only, and the
// call fails (uncertainError) rather than acknowledge what a failover could
// lose.

// defaultRedisTimeout bounds a call when the options name no timeout; it
// is the FastDFS client's default network timeout.
const defaultRedisTimeout = 30 * time.Second

// uncertainError is a change whose outcome the engine cannot know: sent,
// but not answered, or applied on the master but not confirmed by enough
// replicas. It deliberately wraps nothing, so that no errno but EIO can be
// read into it.
type uncertainError struct{ msg string }

func (e *uncertainError) Error() string { return e.msg }

// unavailableError is a call that found no master within the timeout.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

// call runs op (a call of the engine) within the timeout: it enters like
// any call, then retries op while it fails only for want of a master.
func (r *Redis) call(ctx context.Context, write bool, op func(ctx context.Context) error) error {
	if err := r.enter(ctx, write); err != nil {
		return err
	}
	defer r.mu.RUnlock()
	return r.bounded(ctx, op)
}

func (r *Redis) bounded(parent context.Context, op func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, r.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		switch {
		case err == nil:
			r.reachable()
			return nil
		case parent.Err() != nil:
			return err
		case ctx.Err() != nil:
			r.unreachable(err)
			return &unavailableError{fmt.Sprintf("index: no Redis master answered within %v: %v", r.timeout, err)}
		case !retriable(err):
			return err
		}
		r.unreachable(err)
		pause := min(20*time.Millisecond<<min(attempt, 5), 500*time.Millisecond)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return parent.Err()
			}
			return &unavailableError{fmt.Sprintf("index: no Redis master answered within %v: %v", r.timeout, err)}
		case <-t.C:
		}
	}
}

// unreachable logs the first failure of a run of them; reachable logs the
// end of the run.
func (r *Redis) unreachable(err error) {
	if r.down.CompareAndSwap(false, true) {
		r.log.Warn("index: the Redis master is unreachable; calls wait for it (or for a failover) up to the network timeout",
			"timeout", r.timeout, "err", err)
	}
}

func (r *Redis) reachable() {
	if r.down.CompareAndSwap(true, false) {
		r.log.Warn("index: the Redis master answers again")
	}
}

// retriable reports whether err means only that no master could be asked:
// the connection failed, or the server answered that it is not (yet) a
// master that can serve.
func retriable(err error) bool {
	var uncertain *uncertainError
	if errors.As(err, &uncertain) || errors.Is(err, redis.Nil) || errors.Is(err, redis.TxFailedErr) {
		// redis.Nil inside a connection error: a Sentinel that knows
		// no master of that name, which waiting does not mend.
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		// An EXEC refused outright names why.
		msg, _ := strings.CutPrefix(re.Error(), "EXECABORT Transaction discarded because of: ")
		for _, p := range []string{"READONLY ", "LOADING ", "MASTERDOWN ", "TRYAGAIN "} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, redis.ErrPoolTimeout)
}

// exec sends the transaction's MULTI/EXEC (queued by fill) and, under
// wait=N, confirms what it wrote. wrote says whether fill queues writes:
// an EXEC of reads only changes nothing, and a failure there is an ordinary
// one.
func (r *Redis) exec(ctx context.Context, rtx *redis.Tx, wrote bool, fill func(p redis.Pipeliner) error) error {
	cmds, err := rtx.TxPipelined(ctx, fill)
	if err == nil && wrote && r.wait > 0 {
		return r.confirm(ctx, rtx)
	}
	if err == nil || !wrote || errors.Is(err, redis.TxFailedErr) {
		return err
	}
	var re redis.Error
	if errors.As(err, &re) {
		// The server answered: EXECABORT (a command refused while
		// queued, READONLY on a demoted master) applied nothing, and
		// may be run again on the master. Its text does not say why;
		// the refused command's answer does.
		if strings.HasPrefix(re.Error(), "EXECABORT ") {
			for _, c := range cmds {
				if cerr := c.Err(); cerr != nil && retriable(cerr) {
					return fmt.Errorf("index: a transaction refused: %w", cerr)
				}
			}
		}
		return err
	}
	return &uncertainError{fmt.Sprintf("index: a change was sent to Redis without an answer (it may or may not be saved): %v", err)}
}

// confirm waits until r.wait replicas acknowledge every write this
// connection made, within the call's deadline.
func (r *Redis) confirm(ctx context.Context, rtx *redis.Tx) error {
	ms := int64(1)
	if d, ok := ctx.Deadline(); ok {
		// Leave the reply time to arrive before the socket's deadline.
		ms = max(time.Until(d).Milliseconds()-100, 1)
	}
	cmd := redis.NewIntCmd(ctx, "wait", r.wait, ms)
	if err := rtx.Process(ctx, cmd); err != nil {
		return &uncertainError{fmt.Sprintf("index: a change is saved on the Redis master, but asking its replicas to confirm it failed: %v", err)}
	}
	if n := cmd.Val(); n < int64(r.wait) {
		return &uncertainError{fmt.Sprintf("index: a change is saved on the Redis master, but %d of the %d replicas that wait= asks for confirmed it within %v",
			n, r.wait, time.Duration(ms)*time.Millisecond)}
	}
	return nil
}
