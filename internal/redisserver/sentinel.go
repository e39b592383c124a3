package redisserver

// A master, a replica and three Sentinels watching them, each a process
// from Debian's redis-server and redis-sentinel packages on a free
// loopback port, for the failover tests. A test that needs them skips
// where the programs are not installed.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Process is one redis-server or redis-sentinel process of a Sentinel
// setup.
type Process struct {
	t    testing.TB
	Addr string // 127.0.0.1:port
	Port int
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
	exit chan struct{}
}

// need returns the path of a program, skipping the test without it.
func need(t testing.TB, prog string) string {
	t.Helper()
	bin, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed (PATH; Debian's %s package)", prog, prog)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the process and waits until it answers PING (with password,
// when set); a port taken meanwhile by someone else is retried on another.
func start(t testing.TB, bin, dir, name, password string, args func(port int) []string) *Process {
	t.Helper()
	log := filepath.Join(dir, name+".log")
	for range 5 {
		port := freePort(t)
		s := &Process{t: t, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, bin: bin, args: args(port), log: log}
		s.run()
		if err := s.waitPing(password, 10*time.Second); err == nil {
			t.Cleanup(s.Kill)
			return s
		}
		s.Kill()
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("%s did not answer PING\n%s", name, b)
	return nil
}

func (s *Process) run() {
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exit = make(chan struct{})
	go func(cmd *exec.Cmd, exit chan struct{}) { cmd.Wait(); close(exit) }(s.cmd, s.exit)
}

// Kill ends the process with SIGKILL, as a crash of its host would.
func (s *Process) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Restart starts the killed process again on its port with its arguments,
// plus extra ones.
func (s *Process) Restart(password string, extra ...string) {
	s.t.Helper()
	s.Kill()
	args := s.args
	s.args = append(append([]string(nil), s.args...), extra...)
	s.run()
	s.args = args
	if err := s.waitPing(password, 10*time.Second); err != nil {
		b, _ := os.ReadFile(s.log)
		s.t.Fatalf("%s did not answer PING after a restart: %v\n%s", s.Addr, err, b)
	}
}

func (s *Process) waitPing(password string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := pingAuth(s.Addr, password)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pingAuth(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	rd := bufio.NewReader(c)
	if password != "" {
		fmt.Fprintf(c, "AUTH %s\r\n", password)
		if line, err := rd.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH answered %q, %v", line, err)
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// redisArgs are the settings of every test server: loopback, nothing on
// disk, and a replica's full sync at once (Redis 7 waits 5 s for more
// replicas before a diskless one by default).
func redisArgs(dir, name string, port int, password string) []string {
	a := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, name+".log"), "--dbfilename", name + ".rdb",
		"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}
	if password != "" {
		a = append(a, "--requirepass", password, "--masterauth", password)
	}
	return a
}

// SentinelOptions configures StartSentinel.
type SentinelOptions struct {
	// Password is the servers' (requirepass and masterauth); the
	// Sentinels know it as auth-pass. SentinelPassword is the Sentinels'
	// own. Empty: none.
	Password, SentinelPassword string
	// DownAfter is how long the master must be silent before the
	// Sentinels fail it over (default 500ms).
	DownAfter time.Duration
}

// Sentinel is a master, one replica and three Sentinels (quorum 2)
// watching them under the master name "mymaster".
type Sentinel struct {
	t               testing.TB
	opts            SentinelOptions
	Master, Replica *Process
	Sentinels       []*Process
}

// MasterName is the name the Sentinels know the master by.
const MasterName = "mymaster"

// StartSentinel starts the five processes and returns once every Sentinel
// knows the replica and the other two Sentinels, so that a failover can
// happen; t.Cleanup kills them all.
func StartSentinel(t testing.TB, opts SentinelOptions) *Sentinel {
	t.Helper()
	redisBin := need(t, "redis-server")
	sentinelBin := need(t, "redis-sentinel")
	if opts.DownAfter == 0 {
		opts.DownAfter = 500 * time.Millisecond
	}
	dir := t.TempDir()
	s := &Sentinel{t: t, opts: opts}
	s.Master = start(t, redisBin, dir, "master", opts.Password, func(port int) []string {
		return redisArgs(dir, "master", port, opts.Password)
	})
	s.Replica = start(t, redisBin, dir, "replica", opts.Password, func(port int) []string {
		return append(redisArgs(dir, "replica", port, opts.Password), "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port))
	})
	for i := range 3 {
		name := fmt.Sprintf("sentinel%d", i)
		s.Sentinels = append(s.Sentinels, start(t, sentinelBin, dir, name, opts.SentinelPassword, func(port int) []string {
			conf := filepath.Join(dir, name+".conf")
			lines := []string{
				"port " + strconv.Itoa(port),
				"bind 127.0.0.1",
				"daemonize no",
				"dir " + dir,
				"logfile " + filepath.Join(dir, name+".log"),
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", MasterName, s.Master.Port),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", MasterName, opts.DownAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s 3000", MasterName),
				fmt.Sprintf("sentinel parallel-syncs %s 1", MasterName),
			}
			if opts.Password != "" {
				lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", MasterName, opts.Password))
			}
			if opts.SentinelPassword != "" {
				lines = append(lines, "requirepass "+opts.SentinelPassword, "sentinel sentinel-pass "+opts.SentinelPassword)
			}
			if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{conf}
		}))
	}
	s.waitReady()
	return s
}

// Addrs lists the Sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	var as []string
	for _, x := range s.Sentinels {
		as = append(as, x.Addr)
	}
	return as
}

// URL is the Sentinel URL in JuiceFS's spelling, with no password in it,
// and query (without "?") appended.
func (s *Sentinel) URL(query string) string {
	u := "redis://" + MasterName + "," + strings.Join(s.Addrs(), ",") + "/0"
	if query != "" {
		u += "?" + query
	}
	return u
}

func (s *Sentinel) sentinelClient(i int) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[i].Addr, Password: s.opts.SentinelPassword,
		DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
}

// waitReady waits until every Sentinel sees the replica and both other
// Sentinels, and the replica is in sync.
func (s *Sentinel) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for i := range s.Sentinels {
		c := s.sentinelClient(i)
		for {
			m, err := c.Master(context.Background(), MasterName).Result()
			if err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2" {
				break
			}
			last = fmt.Sprintf("sentinel %d: %v %v", i, m, err)
			if time.Now().After(deadline) {
				c.Close()
				s.t.Fatalf("the Sentinels did not find each other and the replica in 20s: %s", last)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
	r := redis.NewClient(&redis.Options{Addr: s.Replica.Addr, Password: s.opts.Password, MaxRetries: -1})
	defer r.Close()
	for {
		info, err := r.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the replica did not sync in 20s: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MasterAddr is the master's address as every Sentinel names it now, or
// "" while they disagree or do not answer.
func (s *Sentinel) MasterAddr() string {
	addr := ""
	for i := range s.Sentinels {
		c := s.sentinelClient(i)
		a, err := c.GetMasterAddrByName(context.Background(), MasterName).Result()
		c.Close()
		if err != nil || len(a) != 2 {
			return ""
		}
		got := net.JoinHostPort(a[0], a[1])
		if addr != "" && got != addr {
			return ""
		}
		addr = got
	}
	return addr
}

// WaitMaster waits until every Sentinel names want as the master.
func (s *Sentinel) WaitMaster(want string, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for s.MasterAddr() != want {
		if time.Now().After(deadline) {
			s.t.Fatalf("the Sentinels name %q as the master after %v, want %s", s.MasterAddr(), limit, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Rejoin restarts a killed server as a replica of the current master, as
// an operator brings a crashed host back; with no persistence it starts
// empty and syncs. It returns once the new replica is in sync.
func (s *Sentinel) Rejoin(srv *Process) {
	s.t.Helper()
	master := s.MasterAddr()
	host, port, _ := net.SplitHostPort(master)
	srv.Restart(s.opts.Password, "--replicaof", host, port)
	r := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: s.opts.Password, MaxRetries: -1})
	defer r.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := r.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not sync with %s in 20s: %v %s", srv.Addr, master, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
