// Package faultproxy is a TCP proxy for tests that puts network faults
// between a client and a database server: an outage during which
// connections are cut and refused (a server restart, as clients see it),
// and a connection that breaks after a request reached the server but
// before its answer came back (the ambiguous outcome of a commit).
package faultproxy

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// quiet is how long a server says nothing before its answer to a cut
// request is taken to be complete.
const quiet = 300 * time.Millisecond

// answerLimit bounds the wait for the first byte of the answer to a cut
// request: past it, the proxy disconnects both sides without a cut.
const answerLimit = time.Minute

// Proxy forwards connections from its address to a target address. It is
// safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	cut   []byte        // a request holding these bytes loses its answer
	cuts  chan struct{} // receives a value each time a request is cut
	wg    sync.WaitGroup
}

// New starts a proxy on a free loopback port that forwards to target
// ("127.0.0.1:5432"). Close it when done.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, cuts: make(chan struct{}, 16)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetDown starts or ends an outage. Starting one closes every open
// connection; during it, new connections are closed as soon as they are
// accepted, as by a server that is restarting.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	var open []net.Conn
	if down {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// CutAnswerTo arranges for the next request whose bytes contain marker to
// be forwarded to the server, its answer to be read from the server and
// dropped, and then both connections to be closed: the server did the
// work, the client never hears of it. Cuts receives a value when it has
// happened.
func (p *Proxy) CutAnswerTo(marker []byte) {
	p.mu.Lock()
	p.cut = bytes.Clone(marker)
	p.mu.Unlock()
}

// Cuts returns the channel that receives a value after each cut.
func (p *Proxy) Cuts() <-chan struct{} { return p.cuts }

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client, server) {
			continue
		}
		c := &pair{client: client, server: server}
		p.wg.Add(2)
		go p.relayRequests(c)
		go p.relayAnswers(c)
	}
}

// pair is a client's connection and the proxy's connection to the server
// for it.
type pair struct {
	client, server net.Conn
	cutting        atomic.Bool // the next answer is dropped
}

// track registers connections, unless an outage began.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) forget(conns ...net.Conn) {
	p.mu.Lock()
	for _, c := range conns {
		delete(p.conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// relayRequests copies the client's bytes to the server. Once a request
// holds the cut marker, relayAnswers drops every answer and then
// disconnects the client; the client's bytes are still forwarded, so that
// a request read in several parts reaches the server whole. The client is
// disconnected only once the server has answered: a driver that sees its
// connection close sends the server a cancel request (pgx does), which
// would otherwise stop the work the cut is meant to let finish.
func (p *Proxy) relayRequests(c *pair) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hit := p.cut != nil && bytes.Contains(buf[:n], p.cut)
			if hit {
				p.cut = nil
			}
			p.mu.Unlock()
			if hit {
				c.server.SetReadDeadline(time.Now().Add(answerLimit))
				c.cutting.Store(true)
			}
			if _, err := c.server.Write(buf[:n]); err != nil {
				p.forget(c.client, c.server)
				return
			}
		}
		if err != nil {
			p.forget(c.client, c.server)
			return
		}
	}
}

// relayAnswers copies the server's bytes to the client, or, after a cut,
// waits for the server's answer (the server did the work; at most
// answerLimit for its first byte), drops it, and closes the connection.
func (p *Proxy) relayAnswers(c *pair) {
	defer p.wg.Done()
	defer p.forget(c.client, c.server)
	buf := make([]byte, 64<<10)
	for {
		n, err := c.server.Read(buf)
		if c.cutting.Load() {
			if n > 0 {
				// The answer may come in parts (a commit's confirmation after
				// the rows): it is over when the server has said nothing for
				// a while.
				for err == nil {
					c.server.SetReadDeadline(time.Now().Add(quiet))
					_, err = c.server.Read(buf)
				}
				select {
				case p.cuts <- struct{}{}:
				default:
				}
			}
			return
		}
		if n > 0 {
			if _, err := c.client.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
