// Package natstest runs a real JetStream cluster of three nats-server
// processes on loopback for tests: file storage in a temporary directory,
// client ports in 14222-14299 and cluster ports in 16222-16299. Tests can
// kill (SIGKILL), stop and restart single servers or the whole cluster.
//
// The servers are the pinned nats-server that scripts/nats-server installs
// (or $NATS_SERVER_BIN). Without it, tests that need a cluster are skipped
// with a message saying how to install it, or fail when CI=true.
//
// A test package shares one cluster ([Shared]); it is stopped by the
// package's TestMain through [StopShared], and in any case dies with the
// test process (the servers get SIGKILL when it exits).
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Version is the nats-server version the tests run.
const Version = "v2.15.2"

// Port ranges the clusters use.
const (
	ClientPortMin, ClientPortMax   = 14222, 14299
	ClusterPortMin, ClusterPortMax = 16222, 16299
)

// Binary returns the path of the nats-server to run, or an error saying
// how to install it.
func Binary() (string, error) {
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("NATS_SERVER_BIN=%q: %v", p, err)
		}
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "nats-server-"+Version, "nats-server")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("nats-server %s is not installed at %s: run scripts/nats-server (or set NATS_SERVER_BIN)", Version, p)
	}
	return p, nil
}

// removeStale removes the stores of clusters whose test process has died
// (its servers died with it): test packages without a TestMain cannot
// remove the shared cluster's stores themselves.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "strata-natstest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // alive, or another user's
		}
		os.RemoveAll(d)
	}
}

// Server is one server of a cluster.
type Server struct {
	Name        string
	ClientPort  int
	ClusterPort int
	Dir         string // store directory
	conf        string
	cmd         *exec.Cmd
	exited      chan struct{}
}

// URL returns the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.ClientPort) }

// Cluster is a running (or stopped) cluster of three servers.
type Cluster struct {
	Servers []*Server
	dir     string
	bin     string
	mu      sync.Mutex
	starter *starter
}

// URL returns the comma-separated client URLs of every server, as
// NATS_URL takes them.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// freeBase finds n consecutive free client ports and n consecutive free
// cluster ports at the same offset in the ranges.
func freeBase(n int) (int, error) {
	for off := 0; off+n-1 <= ClientPortMax-ClientPortMin && off+n-1 <= ClusterPortMax-ClusterPortMin; off += n {
		ok := true
		var ls []net.Listener
		for i := range n {
			for _, p := range []int{ClientPortMin + off + i, ClusterPortMin + off + i} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					ok = false
					break
				}
				ls = append(ls, l)
			}
			if !ok {
				break
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return off, nil
		}
	}
	return 0, fmt.Errorf("no %d free ports in %d-%d and %d-%d", n, ClientPortMin, ClientPortMax, ClusterPortMin, ClusterPortMax)
}

// starter starts processes from one locked OS thread that never exits, so
// that the servers' parent-death signal fires when the test process dies
// and not when a runtime thread is retired.
type starter struct{ reqs chan func() }

func newStarter() *starter {
	s := &starter{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread()
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

func (s *starter) do(f func()) {
	done := make(chan struct{})
	s.reqs <- func() { f(); close(done) }
	<-done
}

// Start starts a new cluster of three servers with empty file stores in a
// new temporary directory.
func Start() (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", "strata-natstest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
		return nil, err
	}
	off, err := freeBase(3)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, starter: newStarter()}
	for i := range 3 {
		c.Servers = append(c.Servers, &Server{
			Name:        fmt.Sprintf("s%d", i+1),
			ClientPort:  ClientPortMin + off + i,
			ClusterPort: ClusterPortMin + off + i,
			Dir:         filepath.Join(dir, fmt.Sprintf("s%d", i+1)),
		})
	}
	for _, s := range c.Servers {
		var routes []string
		for _, o := range c.Servers {
			if o != s {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		s.conf = filepath.Join(dir, s.Name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: strata-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, s.Name, s.ClientPort, s.Dir, s.ClusterPort, strings.Join(routes, ", "))
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			return nil, err
		}
	}
	for i := range c.Servers {
		if err := c.StartServer(i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(time.Minute); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartServer starts server i (again), on its store directory.
func (c *Cluster) StartServer(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.Servers[i]
	if s.cmd != nil {
		return fmt.Errorf("server %s is running", s.Name)
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, s.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.starter.do(func() { err = cmd.Start() })
	if err != nil {
		logf.Close()
		return fmt.Errorf("start nats-server %s: %w", s.Name, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); logf.Close(); close(exited) }(s.exited)
	// Wait for the client port.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.ClientPort), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("nats-server %s exited at start (see %s)", s.Name, filepath.Join(c.dir, s.Name+".log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s does not listen on %d after 30s", s.Name, s.ClientPort)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) signal(i int, sig os.Signal) {
	c.mu.Lock()
	s := c.Servers[i]
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Kill kills server i with SIGKILL: no flush, no goodbye to its peers.
func (c *Cluster) Kill(i int) { c.signal(i, syscall.SIGKILL) }

// Stop stops server i with SIGTERM, and waits for it to exit.
func (c *Cluster) Stop(i int) { c.signal(i, syscall.SIGTERM) }

// Running reports whether server i is running.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Servers[i].cmd != nil
}

// WaitReady waits until JetStream answers through every running server.
func (c *Cluster) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, s := range c.Servers {
		if !c.Running(i) {
			continue
		}
		var last error
		for {
			if last = jetStreamReady(s.URL()); last == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("JetStream is not ready on %s after %v: %w", s.Name, timeout, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// With every server up, wait until the meta leader can place a stream
	// on three of them: it learns its peers a little after it answers.
	running := 0
	for i := range c.Servers {
		if c.Running(i) {
			running++
		}
	}
	if running < len(c.Servers) {
		return nil
	}
	var last error
	for {
		if last = placeable(c.URL()); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no stream of three replicas can be placed after %v: %w", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// placeable creates and deletes a stream of three replicas.
func placeable(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name := fmt.Sprintf("NATSTEST_PROBE_%d", time.Now().UnixNano())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"natstest.probe." + name}, Replicas: 3, Storage: jetstream.MemoryStorage}); err != nil {
		return err
	}
	return js.DeleteStream(ctx, name)
}

func jetStreamReady(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// Restart stops every server and starts them all again on their stores.
func (c *Cluster) Restart() error {
	for i := range c.Servers {
		c.Stop(i)
	}
	for i := range c.Servers {
		if err := c.StartServer(i); err != nil {
			return err
		}
	}
	return c.WaitReady(time.Minute)
}

// Close kills every server and removes the stores.
func (c *Cluster) Close() {
	for i := range c.Servers {
		c.Kill(i)
	}
	os.RemoveAll(c.dir)
}

var shared struct {
	sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test process's cluster, started on first use. It
// skips the test if nats-server is not installed, or fails it when
// CI=true.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = Start()
	}
	if shared.err != nil {
		msg := fmt.Sprintf("no JetStream cluster for the tests: %v", shared.err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return shared.c
}

// StopShared stops the shared cluster if one was started. TestMain calls
// it after the tests.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.c != nil {
		shared.c.Close()
		shared.c = nil
	}
}

// Require starts a cluster of the test's own, for tests that kill and stop
// its servers, and closes it when the test ends.
func Require(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start()
	if err != nil {
		msg := fmt.Sprintf("no JetStream cluster for the test: %v", err)
		if os.Getenv("CI") == "true" || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "not installed") {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(c.Close)
	return c
}

// Env returns the environment of a fresh JetStream store on the shared
// cluster for one test: its own stream name and subject prefixes, so that
// every application the test opens gets streams of its own, deleted when
// the test ends.
func Env(t testing.TB) map[string]string {
	t.Helper()
	c := Shared(t)
	tag := strings.ReplaceAll(fmt.Sprintf("%x", time.Now().UnixNano()), "-", "")
	streams := "T" + tag
	t.Cleanup(func() { deleteStreams(c.URL(), streams+"_") })
	return map[string]string{
		"PERSISTENCE_MODULE":  "jetstream",
		"NATS_URL":            c.URL(),
		"NATS_STREAM_PREFIX":  streams,
		"NATS_SUBJECT_PREFIX": "t" + tag,
	}
}

// deleteStreams deletes the streams whose names begin with prefix.
func deleteStreams(url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		js.DeleteStream(ctx, n)
	}
}
