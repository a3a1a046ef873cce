package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	tenant = "bench"
	apiKey = "hookline-bench-key-0001" // #nosec G101 -- the key of the services the bench starts on loopback for itself
)

// cluster is one hookline on loopback: nats-server, redis-server, ingest and
// workers, each its own process.
type cluster struct {
	dir         string // temp dir: binaries, stores, logs
	bin         string // built binaries
	concurrent  int    // HOOKLINE_WORKER_CONCURRENCY
	natsURL     string
	natsMonitor string // nats-server's monitoring endpoint (loopback)
	redisURL    string
	encKey      string
	nats        *proc
	redis       *proc
	ingest      *proc
	ingestAddr  string
	workers     []*worker
	nWorkers    int // started so far, for unique names
}

type worker struct {
	*proc
	metrics string
}

// build compiles ingest, worker (from the repository) and nats-server (from
// this module's tool dependency) into dir/bin.
func build(root, dir string) (string, error) {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o750); err != nil {
		return "", err
	}
	if err := goBuild(root, bin+"/", "./services/ingest/cmd/ingest", "./services/worker/cmd/worker"); err != nil {
		return "", err
	}
	if err := goBuild(benchDir, filepath.Join(bin, "nats-server"), "github.com/nats-io/nats-server/v2"); err != nil {
		return "", err
	}
	return bin, nil
}

func newCluster(dir, bin string, concurrency int) (*cluster, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, bin: bin, concurrent: concurrency, encKey: base64.StdEncoding.EncodeToString(key)}
	if err := c.startNATS(); err != nil {
		c.close()
		return nil, err
	}
	if err := c.startRedis(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) startNATS() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	host, port, _ := strings.Cut(addr, ":")
	if c.natsMonitor, err = freeAddr(); err != nil {
		return err
	}
	store := filepath.Join(c.dir, "jetstream")
	conf := filepath.Join(c.dir, "nats.conf")
	cfg := fmt.Sprintf("host: %q\nport: %s\nhttp: %q\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n}\n", host, port, c.natsMonitor, store)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return err
	}
	c.nats, err = startProc(c.dir, "nats-server", filepath.Join(c.bin, "nats-server"), []string{"-c", conf}, nil)
	if err != nil {
		return err
	}
	c.natsURL = "nats://" + addr
	return waitTCP(c.nats, addr, 15*time.Second)
}

func (c *cluster) startRedis() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	_, port, _ := strings.Cut(addr, ":")
	rdir := filepath.Join(c.dir, "redis")
	if err := os.MkdirAll(rdir, 0o750); err != nil {
		return err
	}
	c.redis, err = startProc(c.dir, "redis-server", "redis-server", []string{
		"--bind", "127.0.0.1", "--port", port, "--dir", rdir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
	}, nil)
	if err != nil {
		return err
	}
	c.redisURL = "redis://" + addr
	return waitTCP(c.redis, addr, 15*time.Second)
}

func (c *cluster) commonEnv() []string {
	return []string{
		"NATS_URL=" + c.natsURL,
		"REDIS_URL=" + c.redisURL,
		"HOOKLINE_ENCRYPTION_KEY=" + c.encKey,
		"HOOKLINE_ALLOW_PRIVATE_NETWORKS=true",
		"HOOKLINE_LOG_LEVEL=warn",
	}
}

// startIngest starts a fresh ingest process (stopping a running one).
func (c *cluster) startIngest(ctx context.Context) error {
	c.ingest.stop(30 * time.Second)
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	env := append(c.commonEnv(),
		"HOOKLINE_API_KEYS="+apiKeys(),
		"HOOKLINE_ADDR="+addr, // serves /metrics too: no HOOKLINE_METRICS_ADDR
	)
	p, err := startProc(c.dir, "ingest", filepath.Join(c.bin, "ingest"), nil, env)
	if err != nil {
		return err
	}
	c.ingest, c.ingestAddr = p, addr
	return waitHTTP(ctx, p, "http://"+addr+"/readyz", 30*time.Second)
}

// setWorkers stops every running worker, then starts n.
func (c *cluster) setWorkers(ctx context.Context, n int) error {
	c.stopWorkers()
	for range n {
		maddr, err := freeAddr()
		if err != nil {
			return err
		}
		c.nWorkers++
		env := append(c.commonEnv(),
			"HOOKLINE_METRICS_ADDR="+maddr,
			"HOOKLINE_WORKER_CONCURRENCY="+strconv.Itoa(c.concurrent),
			"HOOKLINE_SHUTDOWN_GRACE=10s",
		)
		p, err := startProc(c.dir, "worker-"+strconv.Itoa(c.nWorkers), filepath.Join(c.bin, "worker"), nil, env)
		if err != nil {
			return err
		}
		c.workers = append(c.workers, &worker{proc: p, metrics: maddr})
		if err := waitHTTP(ctx, p, "http://"+maddr+"/readyz", 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) stopWorkers() {
	for _, w := range c.workers {
		w.stop(20 * time.Second)
	}
	c.workers = nil
}

// check reports a service process that died.
func (c *cluster) check() error {
	for _, p := range append([]*proc{c.nats, c.redis, c.ingest}, c.workerProcs()...) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail(20))
		}
	}
	return nil
}

func (c *cluster) workerProcs() []*proc {
	var ps []*proc
	for _, w := range c.workers {
		ps = append(ps, w.proc)
	}
	return ps
}

func (c *cluster) close() {
	c.stopWorkers()
	c.ingest.stop(20 * time.Second)
	c.redis.stop(10 * time.Second)
	c.nats.stop(20 * time.Second)
}

// natsCounts sums, per client name (hookline-worker, hookline-ingest), the
// messages the server received from (in) and sent to (out) its connections.
type natsCounts map[string][2]int64

func (c *cluster) natsConns() (natsCounts, error) {
	resp, err := http.Get("http://" + c.natsMonitor + "/connz?limit=1024")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Connections []struct {
			Name    string `json:"name"`
			InMsgs  int64  `json:"in_msgs"`
			OutMsgs int64  `json:"out_msgs"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	out := natsCounts{}
	for _, cn := range v.Connections {
		x := out[cn.Name]
		x[0] += cn.InMsgs
		x[1] += cn.OutMsgs
		out[cn.Name] = x
	}
	return out, nil
}
