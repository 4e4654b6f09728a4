package faultproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// A server that answers each request of size bytes with "done" once it
// has read all of it, and reports each request it read whole.
func sizedServer(t *testing.T, size int) (addr string, served <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, size)
				for {
					if _, err := io.ReadFull(conn, buf); err != nil {
						return
					}
					ch <- struct{}{}
					if _, err := conn.Write([]byte("done")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// A cut request larger than one read of the proxy, with the marker in its
// first part, reaches the server whole; the server's answer is dropped and
// the client disconnected, and the cut is reported.
func TestACutRequestInSeveralPartsReachesTheServerWhole(t *testing.T) {
	const size = 300 << 10
	addr, served := sizedServer(t, size)
	p, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// A first request goes through, answer and all.
	if _, err := client.Write(bytes.Repeat([]byte{'a'}, size)); err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 4)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, answer); err != nil || string(answer) != "done" {
		t.Fatalf("the answer to a request not cut: %q, %v", answer, err)
	}
	<-served

	p.CutAnswerTo([]byte("MARK"))
	request := bytes.Repeat([]byte{'b'}, size)
	copy(request, "MARK")
	if _, err := client.Write(request); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not get the whole cut request")
	}
	if n, err := client.Read(answer); n != 0 || err == nil {
		t.Fatalf("the client of a cut request read %q, %v; want nothing and a closed connection", answer[:n], err)
	}
	select {
	case <-p.Cuts():
	case <-time.After(10 * time.Second):
		t.Fatal("the cut was not reported")
	}
}
