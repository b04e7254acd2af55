package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// machine records what the numbers were measured on (perf-notes §9.5).
type machine struct {
	NProc        int    `json:"nproc"`
	CPU          string `json:"cpu"`
	Kernel       string `json:"kernel"`
	Go           string `json:"go"`
	Caddy        string `json:"caddy"`
	SQLite       string `json:"sqlite"`
	GOMAXPROCS   string `json:"gomaxprocs_env"`
	GOGC         string `json:"gogc_env"`
	NoFile       uint64 `json:"ulimit_nofile"`
	LoadAvgStart string `json:"loadavg_start"`
	LoadAvgEnd   string `json:"loadavg_end"`
	Pinned       string `json:"pinned,omitempty"` // the -pin layout, empty when unpinned
}

func describeMachine(e *env) machine {
	m := machine{
		NProc: runtime.NumCPU(), Go: runtime.Version(), Caddy: e.caddyVer, SQLite: e.sqliteVer,
		GOMAXPROCS: os.Getenv("GOMAXPROCS"), GOGC: os.Getenv("GOGC"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = rl.Cur
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// xcaddyInfo describes an xcaddy-built binary: -caddy, or -stock-caddy.
type xcaddyInfo struct {
	Path    string `json:"path"`
	Version string `json:"version,omitempty"`
	Modules string `json:"metis_modules,omitempty"`
	// Idle is the RSS serving the Metis config alone (not for stock Caddy).
	Idle memInfo `json:"idle"`
	// Plain is the RSS serving a one-route config that any Caddy can load,
	// for comparing the binary with stock Caddy.
	Plain memInfo `json:"idle_plain"`
	// IdleCold and PlainCold are the same after the binary's pages were
	// dropped from the page cache, as after a reboot: the kernel then reads
	// the executable back in small pages, while a freshly linked one sits in
	// the cache in large folios that it maps 2 MB at a time.
	IdleCold  memInfo `json:"idle_cold"`
	PlainCold memInfo `json:"idle_plain_cold"`
	Error     string  `json:"error,omitempty"`
}

// measureXCaddy records the version and metis modules of an xcaddy-built
// binary and its RSS 3 s after it starts serving, with the gateway config
// alone when metis is set, and with a one-route config.
func measureXCaddy(ctx context.Context, bin, work string, e *env, metis bool) *xcaddyInfo {
	info := &xcaddyInfo{Path: bin}
	if _, err := os.Stat(bin); err != nil {
		info.Error = "not found: " + err.Error()
		return info
	}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		info.Version = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, bin, "list-modules").Output(); err == nil {
		var mods []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "metis") {
				mods = append(mods, strings.TrimSpace(l))
			}
		}
		info.Modules = strings.Join(mods, ", ")
	}
	metisCfg := func(addr string) ([]byte, error) {
		return metisConfig(addr, filepath.Join(work, "xcaddy.db"), e.m0URL, e.streamURL, writerTuning{})
	}
	// As found, then each reading after dropping the binary's pages.
	for _, s := range []struct {
		dst             *memInfo
		cfg             func(addr string) ([]byte, error)
		metisOnly, cold bool
	}{
		{&info.Idle, metisCfg, true, false},
		{&info.Plain, plainConfig, false, false},
		{&info.IdleCold, metisCfg, true, true},
		{&info.PlainCold, plainConfig, false, true},
	} {
		if s.metisOnly && !metis {
			continue
		}
		if s.cold {
			if err := dropPageCache(bin); err != nil {
				info.Error = err.Error()
				return info
			}
		}
		m, err := idleRSS(ctx, bin, work, s.cfg)
		if err != nil {
			info.Error = err.Error()
			return info
		}
		*s.dst = m
	}
	return info
}

// dropPageCache asks the kernel to evict a file's clean pages
// (POSIX_FADV_DONTNEED), so that the next exec reads it from disk.
func dropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dropping %s from the page cache: %w", path, err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping %s from the page cache: %w", path, err)
	}
	return nil
}

// plainConfig is a Caddy JSON config with one route answering "ok" on
// addr and the admin endpoint off.
func plainConfig(addr string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"plain": map[string]any{
			"listen": []string{addr},
			"routes": []any{map[string]any{"handle": []any{map[string]any{"handler": "static_response", "body": "ok"}}}},
		}}}},
	})
}

// idleRSS runs bin with the config cfg makes for a free loopback address
// and reads its memory 3 s after it listens.
func idleRSS(ctx context.Context, bin, work string, cfg func(addr string) ([]byte, error)) (memInfo, error) {
	p, err := freePort()
	if err != nil {
		return memInfo{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	b, err := cfg(addr)
	if err != nil {
		return memInfo{}, err
	}
	cfgPath := filepath.Join(work, "xcaddy.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return memInfo{}, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+work+"/xdg-data", "XDG_CONFIG_HOME="+work+"/xdg-config", "HOME="+work)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return memInfo{}, fmt.Errorf("starting %s: %w", bin, err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitListening(addr, 20*time.Second); err != nil {
		return memInfo{}, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 5))
	}
	time.Sleep(3 * time.Second)
	return readMem(cmd.Process.Pid)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// fetch saves a URL's body to a file.
func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetching %s: %d %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("saving %s: %w", file, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("saving %s: %w", file, err)
	}
	return f.Close()
}

// pprofTop renders the flat and cumulative tops of a CPU profile.
func pprofTop(ctx context.Context, file string) (string, error) {
	var out strings.Builder
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-nodecount=35", file},
		{"tool", "pprof", "-top", "-cum", "-nodecount=45", file},
	} {
		b, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		if err != nil {
			return out.String(), fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, lastLines(string(b), 5))
		}
		out.Write(b)
		out.WriteString("\n")
	}
	return out.String(), nil
}

// components are the parts of a process's CPU profile the report
// attributes, as pprof -focus regexps (a sample counts when any frame of
// its stack matches).
var components = []struct{ name, focus string }{
	{cHandler, `metis\.\(\*Gateway\)\.ServeHTTP|floor\.\(\*Forward\)\.ServeHTTP`},
	{cClient, `net/http\.\(\*Client\)\.do|net/http\.\(\*Transport\)\.roundTrip`},
	{cLog, `zap\.\(\*Logger\)\.Info`},
	{cSSE, `StreamTracker|sse\.\(\*Reader\)\.(parse|findEnd|intern)|sse\.\(\*lineScanner\)|sse\.find`},
	{cFlush, `http\.\(\*ResponseController\)\.Flush`},
	{cWriter, `store\.\(\*Store\)\.runWriter`},
	{cServe, `net/http\.\(\*conn\)\.serve`},
	{cConns, `persistConn\)\.(readLoop|writeLoop)`},
	{cGC, `gcBgMarkWorker|bgsweep|bgscavenge`},
}

// Component names.
const (
	cHandler = "handler"
	cClient  = "upstream client"
	cLog     = "log line"
	cSSE     = "sse"
	cFlush   = "flush"
	cWriter  = "writer"
	cServe   = "conn.serve"
	cConns   = "persistConn"
	cGC      = "gc"
)

// pprofShare is the fraction of a profile's samples whose stack matches
// focus.
func pprofShare(ctx context.Context, file, focus string) (float64, error) {
	b, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0", "-focus="+focus, file).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go tool pprof -focus=%s: %w: %s", focus, err, lastLines(string(b), 3))
	}
	for _, l := range strings.Split(string(b), "\n") {
		// "Showing nodes accounting for 1.06s, 24.54% of 4.32s total"
		if _, rest, ok := strings.Cut(l, "Showing nodes accounting for "); ok {
			if _, pc, ok := strings.Cut(rest, ", "); ok {
				if v, _, ok := strings.Cut(pc, "%"); ok {
					f, err := strconv.ParseFloat(v, 64)
					if err == nil {
						return f / 100, nil
					}
				}
			}
		}
	}
	return 0, nil // nothing matched
}

// microPackages are the packages whose go test benchmarks cover the hot
// path: this repo's bench/hotpath plus those other packages keep next to
// their code. Missing ones are skipped.
// Store's BenchmarkWriter is left out (it runs for over a minute; the load
// runs measure the writer in place: trace check, profiles), and its
// BenchmarkEnqueue gets a fixed count, since its untimed Syncs make a
// 1 s -benchtime take minutes of writer time.
var microPackages = []struct{ dir, bench, benchtime string }{
	{"./bench/hotpath", ".", ""},
	{"./store", "Authenticate$|Enqueue$", "200000x"},
	{"./pricing", ".", ""},
	{"./adapters/sse", ".", ""},
	{"./adapters/anthropic", ".", ""},
	{"./adapters/openai", ".", ""},
	{"./adapters/translate", ".", ""},
}

// runMicro runs the micro-benchmarks from the module root.
func runMicro(ctx context.Context, benchtime string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var errs []string
	for _, p := range microPackages {
		if st, err := os.Stat(filepath.Join(root, p.dir)); err != nil || !st.IsDir() {
			continue
		}
		bt := benchtime
		if p.benchtime != "" {
			bt = p.benchtime
		}
		args := []string{"test", "-run", "^$", "-bench", p.bench, "-benchmem", "-benchtime", bt, "-count", "1", p.dir}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		out.Write(b)
		if err != nil {
			errs = append(errs, fmt.Sprintf("go %s: %v", strings.Join(args, " "), err))
		}
	}
	if len(errs) > 0 {
		return out.String(), errors.New(strings.Join(errs, "; "))
	}
	return out.String(), nil
}

// moduleRoot walks up from the working directory to the metis go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/metisgateway/metis\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no github.com/metisgateway/metis go.mod above the working directory")
		}
		dir = parent
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return os.WriteFile(dst, b, 0o644)
}
