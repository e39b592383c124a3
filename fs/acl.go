package fs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// POSIX access control lists, in the form Linux passes them through the
// system.posix_acl_access and system.posix_acl_default attributes
// (include/uapi/linux/posix_acl_xattr.h): a little-endian header holding
// version 2, then one 8-byte entry per rule: tag (16 bits), permissions
// (16 bits: read 4, write 2, execute 1) and a user or group ID (32 bits,
// used by the USER and GROUP tags only).
//
// With FUSE_POSIX_ACL the kernel checks permissions against the ACLs
// itself, but leaves their storage to the file system and with it what a
// local file system does around them (fs/posix_acl.c): keep the mode's
// permission bits in step with the access ACL, both ways, and give a new
// inode the ACLs of its directory's default ACL. These functions are that
// logic, on values alone; aclfs.go applies them.
const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
)

const (
	aclVersion  = 2
	aclHeader   = 4
	aclEntryLen = 8
)

// Entry tags, in the order a valid ACL lists them.
const (
	aclUserObj  uint16 = 0x01
	aclUser     uint16 = 0x02
	aclGroupObj uint16 = 0x04
	aclGroup    uint16 = 0x08
	aclMask     uint16 = 0x10
	aclOther    uint16 = 0x20
)

// aclUndefinedID is the ID of entries that name no user or group.
const aclUndefinedID = 0xffffffff

type aclEntry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// acl is a parsed ACL, its entries in their order.
type acl []aclEntry

// errBadACL is a value that is not a valid ACL; the caller answers EINVAL,
// as ext4 (and the kernel, before it asks) does.
var errBadACL = errors.New("malformed POSIX ACL")

// parseACL decodes and checks an ACL attribute value as the kernel does
// (posix_acl_from_xattr, posix_acl_valid): version 2, whole entries, only
// read, write and execute permissions, and the tags in order: one owner,
// any named users, one owning group, any named groups, a mask (required
// when there are named users or groups, allowed otherwise), one other. A
// header without entries is a nil ACL: no ACL at all.
func parseACL(b []byte) (acl, error) {
	if len(b) < aclHeader || (len(b)-aclHeader)%aclEntryLen != 0 {
		return nil, fmt.Errorf("%w: %d bytes", errBadACL, len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("%w: version %d", errBadACL, v)
	}
	n := (len(b) - aclHeader) / aclEntryLen
	if n == 0 {
		return nil, nil
	}
	a := make(acl, n)
	for i := range a {
		e := b[aclHeader+i*aclEntryLen:]
		a[i] = aclEntry{
			Tag:  binary.LittleEndian.Uint16(e),
			Perm: binary.LittleEndian.Uint16(e[2:]),
			ID:   binary.LittleEndian.Uint32(e[4:]),
		}
	}
	if err := a.valid(); err != nil {
		return nil, err
	}
	return a, nil
}

// valid is posix_acl_valid's walk through the tags.
func (a acl) valid() error {
	const done = 0
	state := aclUserObj
	needsMask := false
	for i, e := range a {
		if e.Perm&^7 != 0 {
			return fmt.Errorf("%w: entry %d has permissions %#x", errBadACL, i, e.Perm)
		}
		ok := false
		switch e.Tag {
		case aclUserObj:
			ok, state = state == aclUserObj, aclUser
		case aclUser:
			ok, needsMask = state == aclUser, true
		case aclGroupObj:
			ok, state = state == aclUser, aclGroup
		case aclGroup:
			ok, needsMask = state == aclGroup, true
		case aclMask:
			ok, state = state == aclGroup, aclOther
		case aclOther:
			ok = state == aclOther || (state == aclGroup && !needsMask)
			state = done
		}
		if !ok {
			return fmt.Errorf("%w: entry %d (tag %#x) out of place", errBadACL, i, e.Tag)
		}
	}
	if state != done {
		return fmt.Errorf("%w: incomplete (no owner, owning group or other entry)", errBadACL)
	}
	return nil
}

// encode is the attribute value of a; IDs of entries that name nobody are
// written as the kernel writes them.
func (a acl) encode() []byte {
	b := make([]byte, aclHeader, aclHeader+len(a)*aclEntryLen)
	binary.LittleEndian.PutUint32(b, aclVersion)
	for _, e := range a {
		id := e.ID
		if e.Tag != aclUser && e.Tag != aclGroup {
			id = aclUndefinedID
		}
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// modeBits is the permission bits (0777) an access ACL gives the mode
// (posix_acl_equiv_mode): the owner's, the mask's where there is one, else
// the owning group's, and other's. equiv says the ACL says no more than
// those bits (no named users or groups, no mask), so that a file system
// keeps the mode and no ACL.
func (a acl) modeBits() (bits uint32, equiv bool) {
	equiv = true
	var mask, group uint32
	hasMask := false
	for _, e := range a {
		p := uint32(e.Perm & 7)
		switch e.Tag {
		case aclUserObj:
			bits |= p << 6
		case aclGroupObj:
			group = p
		case aclMask:
			mask, hasMask, equiv = p, true, false
		case aclOther:
			bits |= p
		case aclUser, aclGroup:
			equiv = false
		}
	}
	if hasMask {
		return bits | mask<<3, equiv
	}
	return bits | group<<3, equiv
}

// chmod is a with the owner, group class and other permissions of mode
// (posix_acl_chmod): the group class is the mask where there is one,
// else the owning group.
func (a acl) chmod(mode uint32) acl {
	out := make(acl, len(a))
	copy(out, a)
	groupClass := -1
	for i, e := range out {
		switch e.Tag {
		case aclUserObj:
			out[i].Perm = uint16(mode>>6) & 7
		case aclOther:
			out[i].Perm = uint16(mode) & 7
		case aclGroupObj:
			groupClass = i
		case aclMask: // after the owning group: it takes the group class
			groupClass = i
		}
	}
	if groupClass >= 0 {
		out[groupClass].Perm = uint16(mode>>3) & 7
	}
	return out
}

// inherit is what a new inode of mode (the bits the creating call asked
// for, without the umask) gets from its directory's default ACL def
// (posix_acl_create): its access ACL, def with the owner, group class and
// other entries narrowed to mode's bits (nil when that says no more than
// the mode); its default ACL, def itself for a directory, nil otherwise;
// and its mode, narrowed to what the ACL allows.
func (def acl) inherit(mode uint32, dir bool) (access, dflt acl, newMode uint32) {
	access = make(acl, len(def))
	copy(access, def)
	perm := mode & 0o777
	groupClass := -1
	equiv := true
	for i, e := range access {
		switch e.Tag {
		case aclUserObj:
			access[i].Perm &= uint16(perm>>6) & 7
			perm &= uint32(access[i].Perm)<<6 | 0o077
		case aclOther:
			access[i].Perm &= uint16(perm) & 7
			perm &= uint32(access[i].Perm) | 0o770
		case aclGroupObj:
			groupClass = i
		case aclMask: // after the owning group: it takes the group class
			groupClass, equiv = i, false
		case aclUser, aclGroup:
			equiv = false
		}
	}
	if groupClass >= 0 {
		access[groupClass].Perm &= uint16(perm>>3) & 7
		perm &= uint32(access[groupClass].Perm)<<3 | 0o707
	}
	if equiv {
		access = nil
	}
	if dir {
		dflt = def
	}
	return access, dflt, mode&^0o777 | perm
}
