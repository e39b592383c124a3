package fdfs

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrProtocol is wrapped by every error about a malformed frame or body. A
// connection that produced it is out of step with its peer and is closed,
// never reused.
var ErrProtocol = errors.New("fdfs: protocol error")

// protocolErrorf builds an error that wraps ErrProtocol.
func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// StatusError is a response whose header carries a non-zero status. FastDFS
// servers put an errno value there, so errors.Is matches the errno and,
// through it, fs.ErrNotExist, fs.ErrExist and fs.ErrPermission.
type StatusError struct {
	Cmd    byte // the request command that failed
	Status byte // the errno the server answered with
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fdfs: %s: status %d (%s)", CmdName(e.Cmd), e.Status, syscall.Errno(e.Status).Error())
}

// Errno returns the status as a syscall.Errno.
func (e *StatusError) Errno() syscall.Errno { return syscall.Errno(e.Status) }

// Is reports whether target is the errno of the status, or an error that
// errno stands for (fs.ErrNotExist for ENOENT and so on).
func (e *StatusError) Is(target error) bool {
	errno := syscall.Errno(e.Status)
	if t, ok := target.(syscall.Errno); ok {
		return t == errno
	}
	return errno.Is(target)
}
