package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// mountHelperArgs recognises how mount(8) runs a fuse.fdfsfs file system
// (through mount.fuse3): `fdfsfs SOURCE MOUNTPOINT -o OPTIONS`. SOURCE is a
// tracker host:port, or "local" for the built-in cluster. It turns that
// into a mount command that goes to the background once the mount is ready.
func mountHelperArgs(argv0 string, args []string) ([]string, bool) {
	if len(args) < 2 || strings.HasPrefix(args[0], "-") {
		return nil, false
	}
	for _, c := range commands {
		if c.name == args[0] {
			return nil, false
		}
	}
	if args[0] == "help" {
		return nil, false
	}
	// mount.fuse3 always passes -o (at least dev,suid); with it, a missing
	// mountpoint is reported as such rather than as an unknown command.
	if st, err := os.Stat(args[1]); (err != nil || !st.IsDir()) && (len(args) < 4 || args[2] != "-o") {
		return nil, false
	}
	out := []string{"mount", "--background"}
	src := args[0]
	if src != "local" && src != "none" && src != "fdfsfs" {
		for _, t := range strings.Split(src, ",") {
			out = append(out, "--tracker", t)
		}
	}
	// The source shows in /proc/mounts as in fstab, which is also how
	// `mount -a` sees that the line is already mounted. An fsname= in the
	// options still wins.
	if !strings.ContainsAny(src, ", \t\n") {
		out = append(out, "-o", "fsname="+src)
	}
	out = append(out, args[2:]...)
	return append(out, args[1]), true
}

// readyEnv names the descriptor a background child reports its mount on.
const readyEnv = "FDFSFS_READY_FD"

// notifyReady tells the waiting parent (mount helper mode) that the mount
// is up, or why it failed; under systemd's Type=notify it sends READY=1.
// Without either it does nothing.
func notifyReady(err error) {
	if err == nil {
		sdNotify("READY=1")
	}
	if os.Getenv(readyEnv) == "" {
		return
	}
	f := os.NewFile(3, "ready")
	if err != nil {
		fmt.Fprintf(f, "%v\n", err)
	} else {
		fmt.Fprintln(f, "ok")
	}
	f.Close()
	os.Unsetenv(readyEnv)
}

// sdNotify sends one state line to systemd's notify socket, if the service
// manager gave one (Type=notify). A leading @ names an abstract socket.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	os.Unsetenv("NOTIFY_SOCKET") // not for children
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}

// daemonize runs this command again in the background and waits until it
// reports that the mount is ready; its exit code says whether it mounted.
func daemonize(args []string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var child []string
	for _, a := range args {
		if a != "--background" {
			child = append(child, a)
		}
	}
	logf, err := os.OpenFile(filepath.Join(os.TempDir(), "fdfsfs-mount.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		logf = nil
	}
	attr := &os.ProcAttr{
		Env:   append(os.Environ(), readyEnv+"=3"),
		Files: []*os.File{nil, logf, logf, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	p, err := os.StartProcess(exe, append([]string{exe}, child...), attr)
	w.Close()
	if logf != nil {
		logf.Close()
	}
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(r)
	r.Close()
	if s := strings.TrimSpace(string(msg)); s != "ok" {
		p.Wait()
		if s == "" {
			s = "the mount process exited before the mount was ready (see " + filepath.Join(os.TempDir(), "fdfsfs-mount.log") + ")"
		}
		return errors.New(s)
	}
	return p.Release()
}
