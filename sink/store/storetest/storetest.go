// Package storetest gives tests real PostgreSQL databases: one private cluster per test binary,
// started on first use, and a fresh migrated database per test.
package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigilcam/vigil/sink/store"
)

var (
	once    sync.Once
	cluster *store.Cluster
	dir     string
	err     error
	dbs     atomic.Int64
)

// Main runs the tests of a package that uses URL, then stops the cluster and removes it.
// Call it from TestMain: os.Exit(storetest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "storetest:", err)
		}
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}

// URL returns the connection URL of a fresh database with vigil's schema.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if err != nil {
		t.Fatalf("storetest: private PostgreSQL cluster (run deploy/setup.sh): %v", err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbs.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(cluster.URL(), "/vigil?", "/"+name+"?", 1)
	if err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	return url
}

// Open returns a store on a fresh database, closed when the test ends.
func Open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), URL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func start() {
	if dir, err = os.MkdirTemp("", "vigil-pg-"); err != nil {
		return
	}
	cluster, err = store.StartCluster(context.Background(),
		store.ClusterConfig{Dir: dir, Port: 5433}, slog.New(slog.DiscardHandler))
}
