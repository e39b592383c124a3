package fs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// EnableACLs turns on POSIX ACLs for a mount: it asks the kernel for
// FUSE_POSIX_ACL (the kernel then caches ACLs and checks permissions
// against them, and passes system.posix_acl_* through as attributes, which
// the index keeps), for FUSE_DONT_MASK (the kernel leaves the umask to the
// file system: a directory's default ACL replaces it, so the mode asked
// for must arrive whole) and for FUSE_SETXATTR_EXT (which carries the
// kernel's "clear set-group-ID" flag with an access ACL). It returns raw
// wrapped to hand the node methods what go-fuse's node API leaves out:
// the umask of a create, and that flag.
func EnableACLs(raw fuse.RawFileSystem, mo *fuse.MountOptions) fuse.RawFileSystem {
	mo.EnableAcl = true
	mo.ExtraCapabilities |= fuse.CAP_DONT_MASK | fuse.CAP_SETXATTR_EXT
	return aclRequests{raw}
}

type aclRequests struct{ fuse.RawFileSystem }

// The umask travels to Mkdir, Mknod and Create above the file type bits
// of their mode argument (the node API has no other way), marked by
// umaskCarried; splitUmask takes it out again.
const (
	umaskCarried = 1 << 31
	umaskShift   = 16
)

func withUmask(mode, umask uint32) uint32 {
	return mode | umaskCarried | (umask&0o777)<<umaskShift
}

// splitUmask is the mode as the kernel sent it and the umask to apply
// where no default ACL replaces it: 0 when none was carried (the kernel
// applied it already, or the call did not come from the kernel).
func splitUmask(mode uint32) (m, umask uint32) {
	if mode&umaskCarried == 0 {
		return mode, 0
	}
	return mode &^ (umaskCarried | 0o777<<umaskShift), mode >> umaskShift & 0o777
}

// xattrKillSGID, in the flags Setxattr gets, is the kernel's
// FUSE_SETXATTR_ACL_KILL_SGID: the caller of a setfacl is neither in the
// file's group nor has CAP_FSETID, so the set-group-ID bit goes, as on a
// local file system. setxattr(2) flags use the low two bits only.
const xattrKillSGID = 1 << 31

func (r aclRequests) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	c := *in
	c.Mode = withUmask(c.Mode, c.Umask)
	return r.RawFileSystem.Mkdir(cancel, &c, name, out)
}

func (r aclRequests) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	c := *in
	c.Mode = withUmask(c.Mode, c.Umask)
	return r.RawFileSystem.Mknod(cancel, &c, name, out)
}

func (r aclRequests) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	c := *in
	c.Mode = withUmask(c.Mode, c.Umask)
	return r.RawFileSystem.Create(cancel, &c, name, out)
}

func (r aclRequests) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	if attr == xattrACLAccess && in.SetXAttrFlags&fuse.SETXATTR_ACL_KILL_SGID != 0 {
		c := *in
		c.Flags |= xattrKillSGID
		in = &c
	}
	return r.RawFileSystem.SetXAttr(cancel, in, attr, data)
}
