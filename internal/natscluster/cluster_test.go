package natscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// binary returns the nats-server, or skips the test (fails it when
// CI=true).
func binary(t *testing.T) {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

func TestABlockHeldByAnotherClusterIsPassedOver(t *testing.T) {
	b := firstBlock()
	off, lock, err := reserve(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	other, lock2, err := reserve(off/3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock2.Close()
	if other == off {
		t.Fatalf("two reservations got the block at offset %d", off)
	}
	lock.Close()
	again, lock3, err := reserve(off/3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock3.Close()
	if again != off {
		t.Fatalf("the block at offset %d, given up, was not taken again (got %d)", off, again)
	}
}

func TestABlockWithAPortInUseIsPassedOver(t *testing.T) {
	b := firstBlock()
	for _, port := range []int{ClientPortMin + 3*b + 2, ClusterPortMin + 3*b + 1} {
		t.Run(fmt.Sprint(port), func(t *testing.T) {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Skipf("port %d is in use already: %v", port, err)
			}
			defer l.Close()
			off, lock, err := reserve(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			if off == 3*b {
				t.Fatalf("the block with port %d in use was reserved", port)
			}
		})
	}
}

// Clusters started at once get ports of their own and never mix: each is
// three servers of its own name.
func TestClustersStartedAtOnceKeepApart(t *testing.T) {
	binary(t)
	const n = 3
	cs := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); cs[i], errs[i] = Start() }()
	}
	wg.Wait()
	for i, c := range cs {
		if c != nil {
			defer c.Close()
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	ports := map[int]bool{}
	for _, c := range cs {
		for _, s := range c.Servers {
			if ports[s.ClientPort] || ports[s.ClusterPort] {
				t.Fatalf("port %d or %d is used twice", s.ClientPort, s.ClusterPort)
			}
			ports[s.ClientPort], ports[s.ClusterPort] = true, true
		}
		// A stream of three replicas is placed on the cluster's own servers.
		nc, err := nats.Connect(c.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "APART", Subjects: []string{"apart"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Name != c.Name || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("cluster %s placed its stream on %+v", c.Name, info.Cluster)
		}
	}
}

func TestStartWithoutABinarySaysHowToInstallIt(t *testing.T) {
	t.Setenv("NATS_SERVER_BIN", "/nonexistent/nats-server")
	_, err := Start()
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start without a binary: %v", err)
	}
}

// A server whose port another program took exits at start; Start tells
// that from other failures, to start the cluster again on other ports.
func TestAServerWhosePortIsTakenSaysSo(t *testing.T) {
	binary(t)
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Stop(2)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.Servers[2].ClientPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := c.StartServer(2); !errors.Is(err, errPortTaken) {
		t.Fatalf("starting a server on a port in use: %v, want errPortTaken", err)
	}
	if c.Running(2) {
		t.Fatal("the server whose port is taken is running")
	}
}
