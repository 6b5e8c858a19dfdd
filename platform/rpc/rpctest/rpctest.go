// Package rpctest starts a throwaway embedded NATS server for tests of remote calls.
package rpctest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Connect starts an embedded NATS server on a free loopback port and returns a new connection to it; the
// test's cleanup closes the connection and shuts the server down. Further connections to the same server
// come from Dial with the URL conn.ConnectedUrl() returns.
func Connect(t testing.TB) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("rpctest: new NATS server: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("rpctest: NATS server not ready within 10s")
	}
	return Dial(t, srv.ClientURL())
}

// Dial opens another connection to url, closed by the test's cleanup.
func Dial(t testing.TB, url string) *nats.Conn {
	t.Helper()
	conn, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatalf("rpctest: connect to %s: %v", url, err)
	}
	t.Cleanup(conn.Close)
	return conn
}
