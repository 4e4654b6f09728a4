// Package childtest runs a test of the test binary as a child process, for
// tests of what crosses process boundaries: a follower killed with SIGKILL
// and restarted, a follower in another process than its leader.
//
// The parent starts the child with [Start], naming the test function that
// is the child's main and a configuration; that function calls [Config]
// first, which skips it unless it runs as a child.
package childtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

// configVar carries the child's configuration, as JSON.
const configVar = "STRATA_TEST_CHILD_CONFIG"

// IsChild reports whether this process is a child started by [Start].
func IsChild() bool { return os.Getenv(configVar) != "" }

// Config decodes the child's configuration into v, or skips the test if
// this process is not a child: the test is then only the child's main.
func Config(t testing.TB, v any) {
	t.Helper()
	vars := os.Getenv(configVar)
	if vars == "" {
		t.Skip("run as a child process by another test")
	}
	if err := json.Unmarshal([]byte(vars), v); err != nil {
		t.Fatal(err)
	}
}

// SkipInChild skips a test that must not run in a child process.
func SkipInChild(t testing.TB) {
	t.Helper()
	if IsChild() {
		t.Skip("in a child process")
	}
}

// Child is a running child process.
type Child struct {
	Cmd *exec.Cmd
	// Stdin is the child's standard input; closing it is a way to tell the
	// child to stop.
	Stdin  io.WriteCloser
	stdout Buffer
}

// Output returns what the child wrote on its standard output so far.
func (c *Child) Output() string { return c.stdout.String() }

// Kill kills the child with SIGKILL, the way a crash ends a process, and
// waits for it.
func (c *Child) Kill() {
	c.Cmd.Process.Signal(syscall.SIGKILL)
	c.Cmd.Wait()
}

// Start runs the test function named test of this test binary as a child
// process with the configuration config (encoded as JSON). The child is
// killed when the test ends, if it still runs.
func Start(t testing.TB, test string, config any) *Child {
	t.Helper()
	vars, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), configVar+"="+string(vars))
	c := &Child{Cmd: cmd}
	cmd.Stdout, cmd.Stderr = &c.stdout, os.Stderr
	if c.Stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	return c
}

// Buffer is a bytes.Buffer safe for concurrent writes, for the output of
// children and loggers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
