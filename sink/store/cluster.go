package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ClusterConfig configures a private PostgreSQL cluster.
type ClusterConfig struct {
	// Dir holds the cluster: its data directory (data/) and its socket directory (run/). It is
	// created on first start.
	Dir string
	// Port names the unix socket (.s.PGSQL.<port>); the cluster listens on no TCP address.
	Port int
	// BinDir holds initdb and pg_ctl; empty picks the newest /usr/lib/postgresql/*/bin or the
	// directory of initdb on PATH.
	BinDir string
}

// Cluster is a private PostgreSQL cluster that vigil creates and starts itself, so that a machine
// needs no database set-up. PostgreSQL refuses to run as root, so under root the cluster runs as
// the postgres system user and its files belong to that user.
type Cluster struct {
	cfg     ClusterConfig
	bin     string
	data    string
	socket  string
	runAs   string // system user that owns the cluster, or "" for the current user
	started bool   // this process started the server and stops it on Stop
	log     *slog.Logger
}

// database is the name of the database vigil keeps in its cluster.
const database = "vigil"

// StartCluster creates the cluster if needed and starts it unless it is already running (another
// vigil process on this machine may own it).
func StartCluster(ctx context.Context, cfg ClusterConfig, log *slog.Logger) (*Cluster, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	c := &Cluster{cfg: cfg, log: log}
	if c.bin, err = findBinDir(cfg.BinDir); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		c.runAs = "postgres"
		if _, err := user.Lookup(c.runAs); err != nil {
			return nil, fmt.Errorf("postgres cluster: running as root needs the postgres system user (install the postgresql package): %w", err)
		}
	}
	c.data = filepath.Join(dir, "data")
	c.socket = socketDir(dir)
	if err := c.prepare(ctx); err != nil {
		return nil, fmt.Errorf("postgres cluster %s: %w", dir, err)
	}
	if c.running(ctx) {
		log.Info("postgres cluster already running", "dir", dir)
		return c, nil
	}
	if err := c.start(ctx); err != nil {
		return nil, fmt.Errorf("postgres cluster %s: %w", dir, err)
	}
	return c, nil
}

// URL is the connection string of the cluster's vigil database.
func (c *Cluster) URL() string {
	q := url.Values{"host": {c.socket}, "port": {strconv.Itoa(c.cfg.Port)}, "sslmode": {"disable"}}
	return fmt.Sprintf("postgres://%s@/%s?%s", database, database, q.Encode())
}

// Stop stops the server if this process started it; it is safe to call twice.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.started {
		return nil
	}
	c.started = false
	if _, err := c.pg(ctx, "pg_ctl", "stop", "-D", c.data, "-m", "fast", "-w"); err != nil {
		return fmt.Errorf("postgres cluster %s: stop: %w", c.cfg.Dir, err)
	}
	return nil
}

// prepare creates the data and socket directories and runs initdb on first use.
func (c *Cluster) prepare(ctx context.Context) error {
	// Parents stay open to others: under root, the postgres user must pass through them.
	if err := os.MkdirAll(c.cfg.Dir, 0o755); err != nil {
		return err
	}
	if c.runAs != "" {
		if err := os.Chmod(c.cfg.Dir, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{c.data, c.socket} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := c.own(d); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err == nil {
		return c.writeConf()
	}
	if c.runAs != "" {
		// The postgres user must be able to reach the data directory through every parent.
		if _, err := c.pg(ctx, "test", "-w", c.data); err != nil {
			return fmt.Errorf("the %s user cannot write %s (a parent directory is closed to it; set data_dir elsewhere): %w", c.runAs, c.data, err)
		}
	}
	// Trust over the socket only: the socket directory is private to the cluster's user (and root).
	_, err := c.pg(ctx, "initdb", "-D", c.data, "-U", database, "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-instructions")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	conf := filepath.Join(c.data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\ninclude_if_exists = 'vigil.conf'\n")
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	return c.writeConf()
}

// writeConf rewrites vigil's settings on every start, so a moved data directory or a new port
// takes effect.
func (c *Cluster) writeConf() error {
	conf := fmt.Sprintf("# Written by vigil on every start; ALTER SYSTEM overrides it.\nlisten_addresses = ''\nport = %d\nunix_socket_directories = '%s'\n",
		c.cfg.Port, c.socket)
	if mem := machineMemory(); mem > 0 {
		// PostgreSQL's advice for a machine it shares: a quarter of the memory for its buffers
		// (the default, 128MB, holds a twentieth of a million moments, and every search then
		// copies pages in from the kernel's cache), up to 8GB; most of the rest caches files.
		mb := mem >> 20
		conf += fmt.Sprintf("shared_buffers = '%dMB'\neffective_cache_size = '%dMB'\n", min(max(mb/4, 128), 8<<10), max(mb/2, 256))
	}
	// A full-text search reading 60,000 matches overflowed the default 4MB, and rechecked every
	// moment of half its pages: 280 against 220 ms.
	conf += "work_mem = '32MB'\n"
	p := filepath.Join(c.data, "vigil.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		return err
	}
	return c.own(p)
}

// machineMemory returns the bytes of memory this process may use, the machine's or its
// cgroup's limit, whichever is less; 0 when neither can be read.
func machineMemory() int64 {
	var total int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total = kb << 10
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if limit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && limit > 0 && (total == 0 || limit < total) {
			total = limit
		}
	}
	return total
}

func (c *Cluster) running(ctx context.Context) bool {
	_, err := c.pg(ctx, "pg_ctl", "status", "-D", c.data)
	return err == nil
}

func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.data, "server.log")
	if _, err := c.pg(ctx, "pg_ctl", "start", "-D", c.data, "-w", "-t", "60", "-l", logFile); err != nil {
		return fmt.Errorf("start (see %s): %w", logFile, err)
	}
	c.started = true
	c.log.Info("postgres cluster started", "dir", c.cfg.Dir, "socket", c.socket)
	// initdb made only the template databases; vigil's own is made once, here.
	out, err := c.pg(ctx, "psql", "-h", c.socket, "-p", strconv.Itoa(c.cfg.Port), "-U", database,
		"-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = '"+database+"'")
	if err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if strings.TrimSpace(out) != "1" {
		if _, err := c.pg(ctx, "createdb", "-h", c.socket, "-p", strconv.Itoa(c.cfg.Port), "-U", database, database); err != nil {
			return fmt.Errorf("createdb: %w", err)
		}
	}
	return nil
}

// pg runs a PostgreSQL program from the bin directory (or a system tool) as the cluster's user.
func (c *Cluster) pg(ctx context.Context, name string, args ...string) (string, error) {
	prog := filepath.Join(c.bin, name)
	if _, err := os.Stat(prog); err != nil {
		prog = name
	}
	argv := append([]string{prog}, args...)
	if c.runAs != "" {
		argv = append([]string{"runuser", "-u", c.runAs, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/" // the cluster user may not be allowed into the caller's directory
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return "", fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return stdout.String(), nil
}

// own hands a path to the cluster's user when that is not the current one.
func (c *Cluster) own(path string) error {
	if c.runAs == "" {
		return nil
	}
	u, err := user.Lookup(c.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// socketDir keeps the socket inside the cluster directory unless that path would pass the 107-byte
// limit of unix socket names; then it uses a private directory under /tmp named after the data
// directory, so every process finds the same one.
func socketDir(clusterDir string) string {
	dir := filepath.Join(clusterDir, "run")
	if len(dir)+len("/.s.PGSQL.65535.lock") < 100 {
		return dir
	}
	sum := sha256.Sum256([]byte(clusterDir))
	return filepath.Join(os.TempDir(), "vigil-pg-"+hex.EncodeToString(sum[:6]))
}

// findBinDir returns the directory holding initdb: configured, else the newest
// /usr/lib/postgresql/<version>/bin (Debian keeps server programs off PATH), else PATH.
func findBinDir(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(filepath.Join(configured, "initdb")); err != nil {
			return "", fmt.Errorf("database.embedded.bin_dir: %w", err)
		}
		return configured, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("postgres cluster: initdb not found (run deploy/setup.sh, or set database.url to an external PostgreSQL)")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}
