package fs

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"fdfsfs/index"
)

// namedACL: owner rw-, user 65534 rw-, owning group r--, mask rw-,
// other r--: mode 0664 and more.
var namedACL = aclBytes(2, uo, 6, none, u, 6, 65534, gobj, 4, none, m, 6, none, o, 4, none)

func (tf *testFS) xattr(t *testing.T, ino index.Ino, name string) ([]byte, syscall.Errno) {
	t.Helper()
	buf := make([]byte, 4096)
	n, errno := tf.getxattr(context.Background(), ino, name, buf, nil)
	if errno != 0 {
		return nil, errno
	}
	return buf[:n], 0
}

func (tf *testFS) mode(t *testing.T, ino index.Ino) uint32 {
	t.Helper()
	a, err := tf.idx.GetAttr(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	return a.Mode
}

func TestSetACLKeepsModeInStep(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t, withACLs)
	f := tf.create(t, "f") // 0644

	if errno := tf.setxattr(ctx, f.ino, xattrACLAccess, namedACL, 0, nil); errno != 0 {
		t.Fatalf("setxattr: %v", errno)
	}
	if got := tf.mode(t, f.ino); got != 0o664 {
		t.Errorf("mode after setting an ACL with mask rw- = %#o, want 0664", got)
	}
	if v, errno := tf.xattr(t, f.ino, xattrACLAccess); errno != 0 || !bytes.Equal(v, namedACL) {
		t.Errorf("getxattr = %x, %v; want the ACL set, %x", v, errno, namedACL)
	}

	// An ACL the mode says all of is not kept: the mode is.
	minimal := aclBytes(2, uo, 7, none, gobj, 0, none, o, 0, none)
	if errno := tf.setxattr(ctx, f.ino, xattrACLAccess, minimal, 0, nil); errno != 0 {
		t.Fatalf("setxattr of a minimal ACL: %v", errno)
	}
	if got := tf.mode(t, f.ino); got != 0o700 {
		t.Errorf("mode after a minimal ACL = %#o, want 0700", got)
	}
	if _, errno := tf.xattr(t, f.ino, xattrACLAccess); errno != syscall.ENODATA {
		t.Errorf("getxattr after a minimal ACL: %v, want ENODATA", errno)
	}

	// Malformed: EINVAL, and nothing changes.
	tf.setxattr(ctx, f.ino, xattrACLAccess, namedACL, 0, nil)
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 1}, aclBytes(2, uo, 6, none, u, 6, 1, gobj, 4, none, o, 4, none)} {
		if errno := tf.setxattr(ctx, f.ino, xattrACLAccess, bad, 0, nil); errno != syscall.EINVAL {
			t.Errorf("setxattr of %x: %v, want EINVAL", bad, errno)
		}
	}
	if v, _ := tf.xattr(t, f.ino, xattrACLAccess); !bytes.Equal(v, namedACL) || tf.mode(t, f.ino) != 0o664 {
		t.Errorf("a refused ACL changed the file: %x, mode %#o", v, tf.mode(t, f.ino))
	}

	// Removing it keeps the mode; removing it again succeeds, as on ext4.
	for range 2 {
		if errno := tf.removexattr(ctx, f.ino, xattrACLAccess, nil); errno != 0 {
			t.Errorf("removexattr: %v", errno)
		}
	}
	if got := tf.mode(t, f.ino); got != 0o664 {
		t.Errorf("mode after removing the ACL = %#o, want 0664", got)
	}
}

func TestSetACLKillsSGID(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t, withACLs)
	for _, tt := range []struct {
		flags uint32
		want  uint32
	}{{0, 0o2664}, {xattrKillSGID, 0o664}} {
		f := tf.create(t, "f"+string(rune('0'+tt.flags>>31)))
		m := uint32(0o2755)
		if _, err := tf.idx.SetAttr(ctx, f.ino, index.SetAttrIn{Mode: &m}); err != nil {
			t.Fatal(err)
		}
		if errno := tf.setxattr(ctx, f.ino, xattrACLAccess, namedACL, tt.flags, nil); errno != 0 {
			t.Fatalf("setxattr: %v", errno)
		}
		if got := tf.mode(t, f.ino); got != tt.want {
			t.Errorf("flags %#x: mode %#o, want %#o", tt.flags, got, tt.want)
		}
	}
}

func TestDefaultACLOnlyOnDirectories(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t, withACLs)
	f := tf.create(t, "f")
	if errno := tf.setxattr(ctx, f.ino, xattrACLDefault, namedACL, 0, nil); errno != syscall.EACCES {
		t.Errorf("default ACL on a file: %v, want EACCES", errno)
	}
	if errno := tf.setxattr(ctx, tf.group, xattrACLDefault, namedACL, 0, nil); errno != 0 {
		t.Fatalf("default ACL on a directory: %v", errno)
	}
	if v, errno := tf.xattr(t, tf.group, xattrACLDefault); errno != 0 || !bytes.Equal(v, namedACL) {
		t.Errorf("getxattr of the default ACL = %x, %v", v, errno)
	}
	if errno := tf.setxattr(ctx, tf.group, xattrACLDefault, namedACL, index.XattrCreate, nil); errno != syscall.EEXIST {
		t.Errorf("XATTR_CREATE over a default ACL: %v, want EEXIST", errno)
	}
}

func TestChmodRewritesACL(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t, withACLs)
	f := tf.create(t, "f")
	tf.setxattr(ctx, f.ino, xattrACLAccess, namedACL, 0, nil)
	mode := uint32(0o640)
	in := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: mode}}
	if errno := tf.setattr(ctx, f.ino, in, new(fuse.AttrOut)); errno != 0 {
		t.Fatalf("chmod: %v", errno)
	}
	want := aclBytes(2, uo, 6, none, u, 6, 65534, gobj, 4, none, m, 4, none, o, 0, none)
	if v, _ := tf.xattr(t, f.ino, xattrACLAccess); !bytes.Equal(v, want) {
		t.Errorf("ACL after chmod 0640 = %x, want mask r-- and other ---: %x", v, want)
	}
	if got := tf.mode(t, f.ino); got != mode {
		t.Errorf("mode = %#o, want %#o", got, mode)
	}

	// A file without an ACL gets none from a chmod.
	g := tf.create(t, "g")
	tf.setattr(ctx, g.ino, in, new(fuse.AttrOut))
	if names, err := tf.idx.ListXattr(ctx, g.ino); err != nil || len(names) != 0 {
		t.Errorf("a chmod of a file without ACLs left %q, %v", names, err)
	}
}

func TestCreateInheritsDefaultACL(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t, withACLs)
	dir := &dirNode{indexedXattrs: indexedXattrs{tf.FS, tf.group}, group: "group1"}
	create := func(name string, kind index.Kind, mode uint32) index.Attr {
		t.Helper()
		// As the kernel's request arrives through aclRequests.
		mode, umask := splitUmask(withUmask(mode, 0o022))
		a := index.Attr{Kind: kind, Mode: mode}
		if kind == index.KindSymlink {
			a.Target, umask = "f", 0
		}
		got, errno := dir.create(ctx, name, a, umask)
		if errno != 0 {
			t.Fatalf("create %s: %v", name, errno)
		}
		return got
	}

	// Without a default ACL the umask applies.
	if a := create("plain", index.KindFile, 0o666); a.Mode != 0o644 {
		t.Errorf("file 0666 under umask 022 = %#o, want 0644", a.Mode)
	}

	// With one it replaces the umask: the new file's group class is
	// the default ACL's mask narrowed to the mode asked for.
	def := aclBytes(2, uo, 7, none, u, 7, 65534, gobj, 5, none, m, 7, none, o, 5, none)
	if errno := tf.setxattr(ctx, tf.group, xattrACLDefault, def, 0, nil); errno != 0 {
		t.Fatal(errno)
	}
	f := create("f", index.KindFile, 0o666)
	if f.Mode != 0o664 {
		t.Errorf("file 0666 under a default ACL = %#o, want 0664", f.Mode)
	}
	want := aclBytes(2, uo, 6, none, u, 7, 65534, gobj, 5, none, m, 6, none, o, 4, none)
	if v, errno := tf.xattr(t, f.Ino, xattrACLAccess); errno != 0 || !bytes.Equal(v, want) {
		t.Errorf("file's ACL = %x, %v; want %x", v, errno, want)
	}
	if _, errno := tf.xattr(t, f.Ino, xattrACLDefault); errno != syscall.ENODATA {
		t.Errorf("a file inherited a default ACL: %v", errno)
	}

	d := create("d", index.KindDir, 0o777)
	if d.Mode != 0o775 {
		t.Errorf("directory 0777 under a default ACL = %#o, want 0775", d.Mode)
	}
	for _, name := range []string{xattrACLAccess, xattrACLDefault} {
		if v, errno := tf.xattr(t, d.Ino, name); errno != 0 || !bytes.Equal(v, def) {
			t.Errorf("directory's %s = %x, %v; want the default ACL, %x", name, v, errno, def)
		}
	}

	s := create("s", index.KindSymlink, 0o777)
	if names, _ := tf.idx.ListXattr(ctx, s.Ino); len(names) != 0 {
		t.Errorf("a symlink inherited %q", names)
	}
}

func TestUmaskCarried(t *testing.T) {
	for _, mode := range []uint32{0o666, 0o4777 | syscall.S_IFREG, syscall.S_IFCHR | 0o600, syscall.S_IFDIR | 0o1777} {
		for _, umask := range []uint32{0, 0o022, 0o777} {
			m, um := splitUmask(withUmask(mode, umask))
			if m != mode || um != umask {
				t.Errorf("mode %#o umask %#o comes out as %#o, %#o", mode, umask, m, um)
			}
		}
	}
	if m, um := splitUmask(0o644); m != 0o644 || um != 0 {
		t.Errorf("a mode without a umask comes out as %#o, %#o", m, um)
	}
}

// withACLs is the FS option of a mount with -o acl.
func withACLs(o *Options) { o.ACLs = true }

func TestWithoutACLs(t *testing.T) {
	ctx := context.Background()
	tf := newTestFS(t)
	f := tf.create(t, "f")
	for _, name := range []string{xattrACLAccess, xattrACLDefault} {
		if errno := tf.setxattr(ctx, f.ino, name, namedACL, 0, nil); errno != syscall.ENOTSUP {
			t.Errorf("setxattr %s: %v, want ENOTSUP", name, errno)
		}
		if _, errno := tf.xattr(t, f.ino, name); errno != syscall.ENOTSUP {
			t.Errorf("getxattr %s: %v, want ENOTSUP", name, errno)
		}
	}
	// An ACL an earlier mount kept is not listed.
	if err := tf.idx.SetXattr(ctx, f.ino, xattrACLAccess, namedACL, 0); err != nil {
		t.Fatal(err)
	}
	tf.idx.SetXattr(ctx, f.ino, "user.kept", []byte("1"), 0)
	buf := make([]byte, 1024)
	n, errno := tf.listxattr(ctx, f.ino, buf)
	if errno != 0 || string(buf[:n]) != "user.kept\x00" {
		t.Errorf("listxattr = %q, %v; want user.kept alone", buf[:n], errno)
	}
	// A chmod leaves it alone, as ext4 mounted noacl does.
	in := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: fuse.FATTR_MODE, Mode: 0o600}}
	if errno := tf.setattr(ctx, f.ino, in, new(fuse.AttrOut)); errno != 0 || tf.mode(t, f.ino) != 0o600 {
		t.Fatalf("chmod: %v, mode %#o", errno, tf.mode(t, f.ino))
	}
	if v, err := tf.idx.GetXattr(ctx, f.ino, xattrACLAccess); err != nil || !bytes.Equal(v, namedACL) {
		t.Errorf("a chmod without ACLs changed the stored ACL to %x, %v", v, err)
	}
}
