package natscluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Version is the nats-server version that scripts/nats-server installs.
const Version = "v2.15.2"

// Port ranges the clusters use: a cluster takes three consecutive client
// ports and the three cluster ports at the same offset.
const (
	ClientPortMin, ClientPortMax   = 14222, 14299
	ClusterPortMin, ClusterPortMax = 16222, 16299
)

// ErrNotInstalled is wrapped by the error of [Binary] (and [Start]) when
// there is no nats-server to run.
var ErrNotInstalled = errors.New("nats-server is not installed")

// Binary returns the path of the nats-server to run: $NATS_SERVER_BIN, or
// the one scripts/nats-server installs. Its error says how to install it.
func Binary() (string, error) {
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: NATS_SERVER_BIN=%q: %v", ErrNotInstalled, p, err)
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
		return "", fmt.Errorf("%w: nats-server %s is not at %s: run scripts/nats-server (or set NATS_SERVER_BIN)", ErrNotInstalled, Version, p)
	}
	return p, nil
}

// removeStale removes the stores of clusters whose test process has died
// (its servers died with it): test packages without a TestMain cannot
// remove the shared cluster's stores themselves.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "strata-natscluster-*"))
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
	// Name is the cluster's name, which the servers' routes check.
	Name string
	// Servers are the three servers, in the order of their ports.
	Servers []*Server
	dir     string
	bin     string
	lock    *os.File // holds the port block (see reserve)
	mu      sync.Mutex
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

// blocks is the number of port blocks of three in the ranges.
const blocks = min(ClientPortMax-ClientPortMin+1, ClusterPortMax-ClusterPortMin+1) / 3

// firstBlock is the block a process tries first: one that depends on the
// process and the time, so that processes starting clusters at once
// rarely try the same block first.
func firstBlock() int {
	return (os.Getpid() + int(time.Now().UnixNano()/int64(time.Millisecond))) % blocks
}

// reserve takes a block of three client ports and three cluster ports
// that no other cluster holds and no other program listens on, trying
// the blocks from first on and returning the offset of its ports in the
// ranges. The block is held by an exclusive lock on a file of its own,
// which the returned file keeps until it is closed or the process dies;
// skip blocks are not tried.
func reserve(first int, skip map[int]bool) (int, *os.File, error) {
	dir := filepath.Join(os.TempDir(), "strata-natscluster-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, err
	}
	for k := range blocks {
		b := (first + k) % blocks
		if skip[b] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", b)), os.O_CREATE|os.O_RDONLY, 0o666)
		if err != nil {
			continue // another user's lock file
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // another cluster's
		}
		if portsFree(3 * b) {
			return 3 * b, f, nil
		}
		f.Close()
	}
	return 0, nil, fmt.Errorf("no 3 free ports in %d-%d and %d-%d", ClientPortMin, ClientPortMax, ClusterPortMin, ClusterPortMax)
}

// portsFree reports whether the three client and cluster ports at offset
// off can be listened on.
func portsFree(off int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range 3 {
		for _, p := range []int{ClientPortMin + off + i, ClusterPortMin + off + i} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return false
			}
			ls = append(ls, l)
		}
	}
	return true
}

// starter starts processes from one locked OS thread that never exits, so
// that the servers' parent-death signal fires when the test process dies
// and not when a runtime thread is retired.
type starter struct{ reqs chan func() }

// processStarter is the process's one starter.
var processStarter = sync.OnceValue(newStarter)

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
// new temporary directory, on a block of free ports. If a server cannot
// start because something took one of its ports after they were probed,
// the cluster starts again on another block.
func Start() (*Cluster, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	removeStale()
	tried := map[int]bool{}
	for attempt := 1; ; attempt++ {
		c, off, err := start(bin, tried)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 5 {
			return c, err
		}
		tried[off/3] = true
	}
}

// errPortTaken is wrapped by the error of a server that exited at start
// because one of its ports was in use.
var errPortTaken = errors.New("port in use")

func start(bin string, skip map[int]bool) (*Cluster, int, error) {
	off, lock, err := reserve(firstBlock(), skip)
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp("", "strata-natscluster-")
	if err != nil {
		lock.Close()
		return nil, off, err
	}
	c := &Cluster{dir: dir, bin: bin, lock: lock}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
		c.Close()
		return nil, off, err
	}
	for i := range 3 {
		c.Servers = append(c.Servers, &Server{
			Name:        fmt.Sprintf("s%d", i+1),
			ClientPort:  ClientPortMin + off + i,
			ClusterPort: ClusterPortMin + off + i,
			Dir:         filepath.Join(dir, fmt.Sprintf("s%d", i+1)),
		})
	}
	// A server of another cluster that took a port of this one after the
	// probe cannot join it: routes between clusters of different names
	// are refused.
	c.Name = fmt.Sprintf("strata-%d-%d", os.Getpid(), off/3)
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
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, s.Name, s.ClientPort, s.Dir, c.Name, s.ClusterPort, strings.Join(routes, ", "))
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			c.Close()
			return nil, off, err
		}
	}
	for i := range c.Servers {
		if err := c.StartServer(i); err != nil {
			c.Close()
			return nil, off, err
		}
	}
	if err := c.WaitReady(time.Minute); err != nil {
		c.Close()
		return nil, off, err
	}
	return c, off, nil
}

// StartServer starts server i (again), on its store directory.
func (c *Cluster) StartServer(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.Servers[i]
	if s.cmd != nil {
		return fmt.Errorf("server %s is running", s.Name)
	}
	log := filepath.Join(c.dir, s.Name+".log")
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// This start's lines of the log begin at its present end.
	from, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		logf.Close()
		return err
	}
	cmd := exec.Command(c.bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	processStarter().do(func() { err = cmd.Start() })
	if err != nil {
		logf.Close()
		return fmt.Errorf("start nats-server %s: %w", s.Name, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); logf.Close(); close(exited) }(s.exited)
	// Wait for the server to say it is ready: its log, not a connection
	// to its port, which another program listening there would accept.
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := logSince(log, from)
		if strings.Contains(lines, "Server is ready") {
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			lines = logSince(log, from)
			if strings.Contains(lines, "address already in use") {
				return fmt.Errorf("nats-server %s exited at start: %w (%s)", s.Name, errPortTaken, lastLine(lines))
			}
			return fmt.Errorf("nats-server %s exited at start (see %s)", s.Name, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s is not ready after 30s (see %s)", s.Name, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logSince returns the log's text from offset from on.
func logSince(log string, from int64) string {
	b, _ := os.ReadFile(log)
	if int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
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

// Close kills every server, removes the stores and gives up the ports.
func (c *Cluster) Close() {
	for i := range c.Servers {
		c.Kill(i)
	}
	os.RemoveAll(c.dir)
	c.lock.Close()
}

// lastLine returns the last non-empty line of text.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
