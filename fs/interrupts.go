package fs

import "github.com/hanwen/go-fuse/v2/fuse"

// IgnoreInterrupts wraps a FUSE file system so that a signal to the caller
// never cancels its request. Go programs signal their own threads all the
// time (SIGURG), and the kernel turns a signal during a FUSE request into
// an interrupt that go-fuse delivers as a cancelled context: a stat, open
// or read would then fail with EINTR, which no local file system returns
// and few applications retry. Every request here is bounded anyway, by the
// index and by --network-timeout. Blocking lock waits (SetLkw) stay
// interruptible, as on a local disk.
func IgnoreInterrupts(raw fuse.RawFileSystem) fuse.RawFileSystem { return uninterruptibleFS{raw} }

type uninterruptibleFS struct{ fuse.RawFileSystem }

func (u uninterruptibleFS) Lookup(_ <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) (status fuse.Status) {
	return u.RawFileSystem.Lookup(nil, header, name, out)
}

func (u uninterruptibleFS) GetAttr(_ <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	return u.RawFileSystem.GetAttr(nil, input, out)
}

func (u uninterruptibleFS) SetAttr(_ <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	return u.RawFileSystem.SetAttr(nil, input, out)
}

func (u uninterruptibleFS) Mknod(_ <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	return u.RawFileSystem.Mknod(nil, input, name, out)
}

func (u uninterruptibleFS) Mkdir(_ <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	return u.RawFileSystem.Mkdir(nil, input, name, out)
}

func (u uninterruptibleFS) Unlink(_ <-chan struct{}, header *fuse.InHeader, name string) (code fuse.Status) {
	return u.RawFileSystem.Unlink(nil, header, name)
}

func (u uninterruptibleFS) Rmdir(_ <-chan struct{}, header *fuse.InHeader, name string) (code fuse.Status) {
	return u.RawFileSystem.Rmdir(nil, header, name)
}

func (u uninterruptibleFS) Rename(_ <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) (code fuse.Status) {
	return u.RawFileSystem.Rename(nil, input, oldName, newName)
}

func (u uninterruptibleFS) Link(_ <-chan struct{}, input *fuse.LinkIn, filename string, out *fuse.EntryOut) (code fuse.Status) {
	return u.RawFileSystem.Link(nil, input, filename, out)
}

func (u uninterruptibleFS) Symlink(_ <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) (code fuse.Status) {
	return u.RawFileSystem.Symlink(nil, header, pointedTo, linkName, out)
}

func (u uninterruptibleFS) Readlink(_ <-chan struct{}, header *fuse.InHeader) (out []byte, code fuse.Status) {
	return u.RawFileSystem.Readlink(nil, header)
}

func (u uninterruptibleFS) Access(_ <-chan struct{}, input *fuse.AccessIn) (code fuse.Status) {
	return u.RawFileSystem.Access(nil, input)
}

func (u uninterruptibleFS) GetXAttr(_ <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (sz uint32, code fuse.Status) {
	return u.RawFileSystem.GetXAttr(nil, header, attr, dest)
}

func (u uninterruptibleFS) ListXAttr(_ <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	return u.RawFileSystem.ListXAttr(nil, header, dest)
}

func (u uninterruptibleFS) SetXAttr(_ <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return u.RawFileSystem.SetXAttr(nil, input, attr, data)
}

func (u uninterruptibleFS) RemoveXAttr(_ <-chan struct{}, header *fuse.InHeader, attr string) (code fuse.Status) {
	return u.RawFileSystem.RemoveXAttr(nil, header, attr)
}

func (u uninterruptibleFS) Create(_ <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) (code fuse.Status) {
	return u.RawFileSystem.Create(nil, input, name, out)
}

func (u uninterruptibleFS) Tmpfile(_ <-chan struct{}, input *fuse.CreateIn, out *fuse.CreateOut) (code fuse.Status) {
	return u.RawFileSystem.Tmpfile(nil, input, out)
}

func (u uninterruptibleFS) Open(_ <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) (status fuse.Status) {
	return u.RawFileSystem.Open(nil, input, out)
}

func (u uninterruptibleFS) Read(_ <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	return u.RawFileSystem.Read(nil, input, buf)
}

func (u uninterruptibleFS) Lseek(_ <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return u.RawFileSystem.Lseek(nil, in, out)
}

func (u uninterruptibleFS) GetLk(_ <-chan struct{}, input *fuse.LkIn, out *fuse.LkOut) (code fuse.Status) {
	return u.RawFileSystem.GetLk(nil, input, out)
}

func (u uninterruptibleFS) SetLk(_ <-chan struct{}, input *fuse.LkIn) (code fuse.Status) {
	return u.RawFileSystem.SetLk(nil, input)
}

func (u uninterruptibleFS) Release(_ <-chan struct{}, input *fuse.ReleaseIn) {
	u.RawFileSystem.Release(nil, input)
}

func (u uninterruptibleFS) Write(_ <-chan struct{}, input *fuse.WriteIn, data []byte) (written uint32, code fuse.Status) {
	return u.RawFileSystem.Write(nil, input, data)
}

func (u uninterruptibleFS) Writev(_ <-chan struct{}, input *fuse.WriteIn, data [][]byte) (written uint32, code fuse.Status) {
	return u.RawFileSystem.Writev(nil, input, data)
}

func (u uninterruptibleFS) CopyFileRange(_ <-chan struct{}, input *fuse.CopyFileRangeIn) (written uint32, code fuse.Status) {
	return u.RawFileSystem.CopyFileRange(nil, input)
}

func (u uninterruptibleFS) Ioctl(_ <-chan struct{}, input *fuse.IoctlIn, inbuf []byte, output *fuse.IoctlOut, outbuf []byte) (code fuse.Status) {
	return u.RawFileSystem.Ioctl(nil, input, inbuf, output, outbuf)
}

func (u uninterruptibleFS) Flush(_ <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	return u.RawFileSystem.Flush(nil, input)
}

func (u uninterruptibleFS) Fsync(_ <-chan struct{}, input *fuse.FsyncIn) (code fuse.Status) {
	return u.RawFileSystem.Fsync(nil, input)
}

func (u uninterruptibleFS) Fallocate(_ <-chan struct{}, input *fuse.FallocateIn) (code fuse.Status) {
	return u.RawFileSystem.Fallocate(nil, input)
}

func (u uninterruptibleFS) OpenDir(_ <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) (status fuse.Status) {
	return u.RawFileSystem.OpenDir(nil, input, out)
}

func (u uninterruptibleFS) ReadDir(_ <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return u.RawFileSystem.ReadDir(nil, input, out)
}

func (u uninterruptibleFS) ReadDirPlus(_ <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return u.RawFileSystem.ReadDirPlus(nil, input, out)
}

func (u uninterruptibleFS) FsyncDir(_ <-chan struct{}, input *fuse.FsyncIn) (code fuse.Status) {
	return u.RawFileSystem.FsyncDir(nil, input)
}

func (u uninterruptibleFS) StatFs(_ <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) (code fuse.Status) {
	return u.RawFileSystem.StatFs(nil, input, out)
}

func (u uninterruptibleFS) Statx(_ <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) (code fuse.Status) {
	return u.RawFileSystem.Statx(nil, input, out)
}
