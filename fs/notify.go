package fs

import (
	"sync"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"fdfsfs/index"
)

// Change notices from other mount hosts (a shared index) become kernel
// cache invalidations: a changed entry is dropped from its directory's
// dentry cache (negative entries too), a changed inode loses its cached
// attributes and, for a file, its cached pages. Without them another host's
// change shows once the kernel's timeouts expire; with them the timeouts can
// be long.
//
// nodes maps index inode numbers to the kernel-visible inodes, so that a
// notice naming an inode finds it. It holds only what the kernel knows:
// OnForget takes a node out. With an index that sends no notices (Badger)
// it stays off: filling it was about 7% of the mount's CPU in an ls -l of
// 100,000 entries, for nothing.
type nodeTable struct {
	mu    sync.Mutex
	on    bool                        // set once, before the mount serves
	nodes map[index.Ino]*fusefs.Inode // guarded by mu
}

func (t *nodeTable) track(ino index.Ino, n *fusefs.Inode) {
	if !t.on {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes == nil {
		t.nodes = make(map[index.Ino]*fusefs.Inode)
	}
	t.nodes[ino] = n
}

// forget drops n, unless the number already names a newer node.
func (t *nodeTable) forget(ino index.Ino, n *fusefs.Inode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes[ino] == n {
		delete(t.nodes, ino)
	}
}

func (t *nodeTable) get(ino index.Ino) *fusefs.Inode {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nodes[ino]
}

// all returns every node the kernel knows now.
func (t *nodeTable) all() []*fusefs.Inode {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := make([]*fusefs.Inode, 0, len(t.nodes))
	for _, n := range t.nodes {
		ns = append(ns, n)
	}
	return ns
}

var (
	_ = (fusefs.NodeOnForgetter)((*dirNode)(nil))
	_ = (fusefs.NodeOnForgetter)((*fileNode)(nil))
	_ = (fusefs.NodeOnForgetter)((*symlinkNode)(nil))
)

func (d *dirNode) OnForget()     { d.fs.nodes.forget(d.ino, &d.Inode) }
func (n *fileNode) OnForget()    { n.fs.nodes.forget(n.ino, &n.Inode) }
func (s *symlinkNode) OnForget() { s.fs.nodes.forget(s.ino, &s.Inode) }

// watchChanges applies the index's change notices until the FS stops or
// the index closes the channel. Notify calls go to the kernel from this
// goroutine, never from inside a FUSE request, so they cannot wait on a
// request that waits on them.
func (f *FS) watchChanges(changes <-chan index.Change) {
	defer f.wg.Done()
	for {
		var c index.Change
		var ok bool
		select {
		case <-f.stop:
			return
		case c, ok = <-changes:
			if !ok {
				return
			}
		}
		if c.All {
			f.dropAllCached()
			continue
		}
		if c.Parent != 0 {
			if p := f.nodes.get(c.Parent); p != nil {
				p.NotifyEntry(c.Name)
			}
		}
		if c.Ino != 0 {
			if n := f.nodes.get(c.Ino); n != nil {
				dropCached(n)
			}
		}
	}
}

func dropCached(n *fusefs.Inode) {
	if _, isFile := n.Operations().(*fileNode); isFile {
		n.NotifyContent(0, 0) // attributes and every cached page
	} else {
		n.NotifyContent(-1, 0) // attributes only
	}
}

// dropAllCached answers a lost run of notices: every node the kernel knows
// loses its attributes (and a file its pages), and every directory the
// names the kernel looked up in it. Negative entries are not listed
// anywhere; they expire after --attr-timeout.
func (f *FS) dropAllCached() {
	ns := f.nodes.all()
	for _, n := range ns {
		dropCached(n)
		if _, isDir := n.Operations().(*dirNode); isDir {
			for name := range n.Children() {
				n.NotifyEntry(name)
			}
		}
	}
	f.log.Info("dropped every cached entry after a gap in the change notices", "nodes", len(ns))
}
