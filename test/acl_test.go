package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fdfsfs/fdfs/localcluster"
)

// TestACLs: POSIX ACLs on the mount behave as on the local disk the
// tests run on: setfacl and getfacl, the mode kept in step both ways,
// default ACLs inherited by new files and directories in place of the
// umask; the kernel enforces them for another user; cp -a, rsync -aA and
// tar --acls carry them into the mount and out; and they survive a
// remount.
func TestACLs(t *testing.T) {
	for _, tool := range []string{"setfacl", "getfacl", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (packages acl and util-linux; .ci/run installs them)", tool)
		}
	}
	local := t.TempDir()
	if out, err := exec.Command("setfacl", "-m", "u:65534:r", local).CombinedOutput(); err != nil {
		t.Skipf("the local disk under %s keeps no ACLs to compare with: %s", local, out)
	}
	exec.Command("setfacl", "-b", local).Run()

	c := cluster(t, localcluster.Options{})
	m := startMount(t, c, "-o", "allow_other,acl")
	g := m.path("group1")
	// Another user must reach the mount: t.TempDir() is 0700.
	if err := os.Chmod(filepath.Dir(m.dir), 0o755); err != nil {
		t.Fatal(err)
	}

	// The same steps on both: what the mount shows must be what the
	// local disk shows.
	steps := `
umask 022
printf secret > f; chmod 600 f; setfacl -m u:65534:r f
printf data > g; setfacl -m u:65534:rw,g:65534:r g; chmod 640 g
printf x > h; setfacl -m u:65534:rwx h; setfacl -m u:65534:r h; setfacl -x u:65534 h
printf y > e; setfacl -m u::rwx,g::r,o::- e
mkdir d; setfacl -d -m u:65534:rwx,g::rx d
(umask 077; touch d/f; mkdir d/sub; mkfifo d/fifo; ln -s f d/link)
touch d/sub/deep; chmod 700 d/sub/deep
mkdir -m 750 d/sub/m
`
	sh(t, "cd "+local+" && "+steps)
	sh(t, "cd "+g+" && "+steps)
	want := acls(t, local)
	if got := acls(t, g); !slices.Equal(got, want) {
		t.Fatalf("after the same steps the mount shows\n%s\nthe local disk\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	as := "setpriv --reuid=65534 --regid=65534 --clear-groups "
	t.Run("enforced", func(t *testing.T) {
		f := filepath.Join(g, "f")
		if out := sh(t, as+"cat "+f); out != "secret" {
			t.Errorf("user 65534, named with r--, read %q", out)
		}
		if out, err := exec.Command("bash", "-c", as+"sh -c 'printf x >> "+f+"'").CombinedOutput(); err == nil {
			t.Errorf("user 65534, named with r--, wrote to the file: %s", out)
		}
		sh(t, "chmod 600 "+f) // the mask goes to ---
		if got := sh(t, "getfacl -n --omit-header "+f+" | grep -E '^(user:65534|mask)'"); got != "user:65534:r--\t#effective:---\nmask::---\n" {
			t.Errorf("after chmod 600 getfacl says\n%s", got)
		}
		if out, err := exec.Command("bash", "-c", as+"cat "+f).CombinedOutput(); err == nil {
			t.Errorf("user 65534 read the file after chmod 600 masked its entry: %s", out)
		}
		sh(t, "chmod 640 "+f)
		if out := sh(t, as+"cat "+f); out != "secret" {
			t.Errorf("after chmod 640 user 65534 read %q", out)
		}
		// Inherited from d's default ACL (rwx for 65534, mask rw- from
		// touch's 0666), whatever the creator's umask.
		if out, err := exec.Command("bash", "-c", as+"sh -c 'printf w > "+filepath.Join(g, "d", "f")+"'").CombinedOutput(); err != nil {
			t.Errorf("user 65534 could not write a file its directory's default ACL lets it write: %v %s", err, out)
		}
		// g names 65534 with rw-, but chmod 640 made the mask r--.
		if out, err := exec.Command("bash", "-c", as+"sh -c 'printf x >> "+filepath.Join(g, "g")+"'").CombinedOutput(); err == nil {
			t.Errorf("user 65534 wrote to g through an entry the mask limits to r--: %s", out)
		}
		if out := sh(t, as+"cat "+filepath.Join(g, "g")); out != "data" {
			t.Errorf("user 65534 read %q from g", out)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// A default ACL only on a directory; a malformed value EINVAL.
		for _, script := range []string{
			"setfacl -d -m u:65534:r " + filepath.Join(g, "g"),
			"setfattr -n system.posix_acl_access -v 0x0200000001000600 " + filepath.Join(g, "g"),
		} {
			onDisk := shErr(t, strings.ReplaceAll(script, g, local))
			onMount := shErr(t, script)
			if strings.ReplaceAll(onMount, g, local) != onDisk {
				t.Errorf("%s fails on the mount with\n%s\nand locally with\n%s", script, onMount, onDisk)
			}
		}
	})

	// A tree with ACLs (local, as built above) into the mount and out.
	tree := acls(t, local)
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Fatal("rsync is not installed (.ci/run installs it)")
	}
	type copyRun struct{ name, dir, script string }
	in := []copyRun{
		{"cp -a in", m.path("group2", "cp"), "cp -a " + local + " DIR"},
		{"rsync -aA in", m.path("group2", "rsync"), "rsync -aA " + local + "/ DIR"},
		{"tar --acls in", m.path("group2", "tar"), "mkdir DIR && tar --acls -C " + local + " -cf - . | tar --acls -C DIR -xf -"},
	}
	out := []copyRun{
		{"cp -a out", filepath.Join(t.TempDir(), "cp"), "cp -a " + in[0].dir + " DIR"},
		{"rsync -aA out", filepath.Join(t.TempDir(), "rsync"), "rsync -aA " + in[1].dir + "/ DIR"},
		{"tar --acls out", filepath.Join(t.TempDir(), "tar"), "mkdir DIR && tar --acls -C " + in[2].dir + " -cf - . | tar --acls -C DIR -xf -"},
	}
	check := func(when string, runs []copyRun) {
		t.Helper()
		for _, r := range runs {
			if got := acls(t, r.dir); !slices.Equal(got, tree) {
				t.Errorf("%s: %s shows\n%s\nthe source\n%s", when, r.name, strings.Join(got, "\n"), strings.Join(tree, "\n"))
			}
		}
	}
	for _, r := range append(in, out...) {
		sh(t, strings.ReplaceAll(r.script, "DIR", r.dir))
	}
	check("copied", append(in, out...))

	m.remount()
	check("after a remount", in)
	if got := acls(t, g); !slices.Equal(got, want) {
		t.Errorf("after a remount the mount shows\n%s\nbefore it\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out := sh(t, as+"cat "+filepath.Join(g, "f")); out != "secret" {
		t.Errorf("after a remount user 65534 read %q", out)
	}
}

// acls is getfacl -R of what dir holds, with numeric IDs, one record per
// file, in name order (a directory lists in another order on each file
// system). dir itself is left out: a group directory is not made as a
// temporary directory is.
func acls(t *testing.T, dir string) []string {
	t.Helper()
	out := sh(t, "cd "+dir+" && getfacl -R -n .")
	var recs []string
	for _, r := range strings.Split(strings.TrimSpace(out), "\n\n") {
		if r = strings.TrimSpace(r); r != "" && !strings.HasPrefix(r, "# file: .\n") {
			recs = append(recs, r)
		}
	}
	slices.Sort(recs)
	if len(recs) == 0 {
		t.Fatalf("getfacl -R %s printed nothing", dir)
	}
	return recs
}

// TestWithoutACLs: without -o acl the mount keeps no ACLs (setfacl is
// refused with ENOTSUP) and the kernel applies the umask itself.
func TestWithoutACLs(t *testing.T) {
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Skip("no setfacl (package acl; .ci/run installs it)")
	}
	c := cluster(t, localcluster.Options{})
	m := startMount(t, c)
	f := m.path("group1", "f")
	sh(t, "umask 027 && touch "+f)
	if got := strings.TrimSpace(sh(t, "stat -c %a "+f)); got != "640" {
		t.Errorf("touch under umask 027 made mode %s, want 640", got)
	}
	if out := shErr(t, "setfacl -m u:65534:r "+f); !strings.Contains(out, "Operation not supported") {
		t.Errorf("setfacl without -o acl: %s", out)
	}
	if out := shErr(t, "getfattr -n system.posix_acl_access "+f); !strings.Contains(out, "Operation not supported") {
		t.Errorf("getfattr of an ACL without -o acl: %s", out)
	}
}
