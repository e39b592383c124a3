package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// KillPrivileges wraps a FUSE file system for a mount that negotiates
// fuse.CAP_HANDLE_KILLPRIV_V2 (KillPrivilegesCapability).
//
// Without that capability the kernel keeps no "nothing to strip" mark on a
// FUSE file, so before every write(2) it asks the file system for the
// file's security.capability attribute: one extra round trip per write. With
// it the kernel marks the mount SB_NOSEC and, once a write found neither
// set-ID bits nor that attribute, lets later writes to the file skip the
// question (until its attributes are next refreshed). In exchange the file
// system itself clears the set-ID bits where the kernel asks: a write or a
// truncate by a caller without CAP_FSETID, a chown of a file. The rule is
// the kernel's own: set-user-ID always goes, set-group-ID with group
// execute, or on a write by a caller outside the file's group. fdfsfs keeps
// no security.* attributes, so there is no capability to strip.
func KillPrivileges(raw fuse.RawFileSystem) fuse.RawFileSystem { return suidKiller{raw} }

// KillPrivilegesCapability is the INIT capability KillPrivileges serves;
// add it to fuse.MountOptions.ExtraCapabilities only with the wrapper.
const KillPrivilegesCapability = fuse.CAP_HANDLE_KILLPRIV_V2

type suidKiller struct{ fuse.RawFileSystem }

// killedMode is mode without the set-ID bits a write, truncate or chown
// removes, and whether that changed anything: set-user-ID always,
// set-group-ID with group execute or when the caller is outside the file's
// group (outsideGroup). A directory keeps them (Linux clears them on no
// directory); only a regular file is written or truncated, but a chown
// clears them on a FIFO, a socket or a device too, as chown_common does.
func killedMode(mode uint32, outsideGroup bool) (uint32, bool) {
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		return mode, false
	}
	m := mode &^ syscall.S_ISUID
	if mode&syscall.S_IXGRP != 0 || outsideGroup {
		m &^= syscall.S_ISGID
	}
	return m, m != mode
}

func (k suidKiller) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if st := k.killForWrite(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Write(cancel, in, data)
}

// Writev is what go-fuse calls for WRITE; Write only if it says ENOSYS.
func (k suidKiller) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := k.killForWrite(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Writev(cancel, in, data)
}

// killForWrite clears the set-ID bits before a write that the kernel
// flagged (a writer without CAP_FSETID, to a file its cached mode says
// has them).
func (k suidKiller) killForWrite(cancel <-chan struct{}, in *fuse.WriteIn) fuse.Status {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return fuse.OK
	}
	var cur fuse.AttrOut
	if st := k.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &cur); !st.Ok() {
		return st
	}
	// Only the writer's primary group is known here, so a member by a
	// supplementary group counts as outside: more than the kernel would
	// clear, never less.
	m, ok := killedMode(cur.Mode, cur.Gid != in.Caller.Gid)
	if !ok {
		return fuse.OK
	}
	set := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{InHeader: in.InHeader, Valid: fuse.FATTR_MODE, Mode: m}}
	return k.RawFileSystem.SetAttr(cancel, set, &cur)
}

func (k suidKiller) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if in.Valid&fuse.FATTR_KILL_SUIDGID == 0 {
		return k.RawFileSystem.SetAttr(cancel, in, out)
	}
	c := *in
	c.Valid &^= fuse.FATTR_KILL_SUIDGID
	mode := c.Mode
	if c.Valid&fuse.FATTR_MODE == 0 {
		var cur fuse.AttrOut
		if st := k.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &cur); !st.Ok() {
			return st
		}
		mode = cur.Mode
	}
	// The caller may be root doing a chown, whom the kernel lets keep
	// set-group-ID without group execute: only the group-execute rule.
	if m, ok := killedMode(mode, false); ok {
		c.Valid |= fuse.FATTR_MODE
		c.Mode = m
	}
	return k.RawFileSystem.SetAttr(cancel, &c, out)
}
