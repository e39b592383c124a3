package index

import (
	"fmt"
	"strings"
)

// CheckName reports whether name may be a directory entry: ErrInvalid for
// "", ".", "..", a name holding '/' or NUL, and ErrNameLen above MaxNameLen
// bytes. Every engine checks names with it, so all of them refuse the same.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: name %q", ErrInvalid, name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes", ErrNameLen, len(name))
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: name %q holds '/' or NUL", ErrInvalid, name)
	}
	return nil
}

func (k Kind) valid() bool { return k >= KindFile && k <= KindBlockDev }

func (r PendingReason) valid() bool { return r == PendingUpload || r == PendingDelete }

func (r PendingReason) String() string {
	switch r {
	case PendingUpload:
		return "upload"
	case PendingDelete:
		return "delete"
	}
	return "unknown"
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
