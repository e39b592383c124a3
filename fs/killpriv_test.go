package fs

import (
	"syscall"
	"testing"
)

func TestKilledMode(t *testing.T) {
	const suid, sgid = syscall.S_ISUID, syscall.S_ISGID
	for _, c := range []struct {
		name    string
		mode    uint32
		outside bool
		want    uint32
	}{
		{"file: set-user-ID goes", syscall.S_IFREG | suid | 0o755, false, syscall.S_IFREG | 0o755},
		{"file: set-group-ID without group execute stays", syscall.S_IFREG | sgid | 0o644, false, syscall.S_IFREG | sgid | 0o644},
		{"file: set-group-ID with group execute goes", syscall.S_IFREG | sgid | 0o654, false, syscall.S_IFREG | 0o654},
		{"file: set-group-ID goes for a caller outside the group", syscall.S_IFREG | sgid | 0o644, true, syscall.S_IFREG | 0o644},
		{"fifo: a chown clears both", syscall.S_IFIFO | suid | sgid | 0o555, false, syscall.S_IFIFO | 0o555},
		{"device: a chown clears set-user-ID", syscall.S_IFCHR | suid | 0o644, false, syscall.S_IFCHR | 0o644},
		{"socket: a chown clears them", syscall.S_IFSOCK | suid | sgid | 0o775, false, syscall.S_IFSOCK | 0o775},
		{"directory: kept", syscall.S_IFDIR | suid | sgid | 0o755, true, syscall.S_IFDIR | suid | sgid | 0o755},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, changed := killedMode(c.mode, c.outside)
			if got != c.want || changed != (c.want != c.mode) {
				t.Errorf("killedMode(%#o, %v) = %#o, %v; want %#o, %v", c.mode, c.outside, got, changed, c.want, c.want != c.mode)
			}
		})
	}
}
