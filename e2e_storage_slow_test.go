//go:build cgo && linux

package metis

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// slowWriteShim is an LD_PRELOAD library that makes every write,
// pwrite and pwrite64 to a file whose path contains $SLOWWRITE_PATH take
// $SLOWWRITE_US microseconds longer (read at each call): a sync-mounted
// volume limited to a few hundred write IOPS, where each write SQLite
// makes (a WAL frame is two: its header, its page) waits for the device.
const slowWriteShim = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
static void delay(int fd) {
	const char *us = getenv("SLOWWRITE_US"), *only = getenv("SLOWWRITE_PATH");
	if (!us || !*us || !only || !*only) return;
	char p[64], target[4096];
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, target, sizeof target - 1);
	if (n < 0) return;
	target[n] = 0;
	if (!strstr(target, only)) return;
	long v = atol(us);
	struct timespec ts = { v / 1000000, (v % 1000000) * 1000L };
	nanosleep(&ts, NULL);
}
ssize_t write(int fd, const void *b, size_t n) { static ssize_t (*real)(int, const void *, size_t); if (!real) real = dlsym(RTLD_NEXT, "write"); delay(fd); return real(fd, b, n); }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { static ssize_t (*real)(int, const void *, size_t, off_t); if (!real) real = dlsym(RTLD_NEXT, "pwrite"); delay(fd); return real(fd, b, n, o); }
ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o) { static ssize_t (*real)(int, const void *, size_t, off64_t); if (!real) real = dlsym(RTLD_NEXT, "pwrite64"); delay(fd); return real(fd, b, n, o); }
`

// runWithSlowWrites runs the calling test again in a child process with
// the shim preloaded; it reports whether this is the child.
func runWithSlowWrites(t *testing.T) (child bool) {
	t.Helper()
	if os.Getenv("METIS_SLOWWRITE_CHILD") == "1" {
		return true
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to build the slow-write shim")
	}
	dir := t.TempDir()
	src, so := filepath.Join(dir, "slowwrite.c"), filepath.Join(dir, "slowwrite.so")
	if err := os.WriteFile(src, []byte(slowWriteShim), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-shared", "-fPIC", "-O2", "-o", so, src, "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building the shim: %v\n%s", err, out)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "METIS_SLOWWRITE_CHILD=1", "LD_PRELOAD="+so, "SLOWWRITE_US=")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "{") { // the gateway's JSON log
			t.Log("child: " + line)
		}
	}
	if err != nil {
		t.Fatalf("the test failed with slow writes: %v", err)
	}
	return false
}

// On a sync-mounted loop device limited to 300 write IOPS, a writer that
// shrank its transactions whenever one held the write lock over 200 ms
// wrote about 60 events/s where 2,048-event transactions wrote 350: each
// transaction's fixed pages (the rollups, every index's last leaf) cost
// about 200 ms there, so the size fell to its minimum and never grew back;
// at 300 calls/s 10,863 events were dropped within 90 s (audit 23F, whose
// test this is). A writer behind its traffic now allows itself larger
// transactions (txBehindTarget).
//
// Here: writes to the database take 5 ms more each (about 200 write IOPS,
// as a sync mount makes them), 1,000 calls are answered as fast as the
// gateway goes, and the backlog (3,000 events) must be written within
// 25 s: b9365f4 wrote it in about 5 s, the writer that shrank by time
// alone at 84 events/s.
func TestTraceWriterKeepsItsThroughputOnSlowWrites(t *testing.T) {
	if !runWithSlowWrites(t) {
		return
	}
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "busy"})
	g.sync()
	if err := os.Setenv("SLOWWRITE_PATH", filepath.Dir(g.DB)); err != nil {
		t.Fatal(err)
	}
	if err := os.Setenv("SLOWWRITE_US", "5000"); err != nil {
		t.Fatal(err)
	}
	defer os.Setenv("SLOWWRITE_US", "")

	const calls = 1000
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= calls {
				resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // status is what counts
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	answered := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	st := g.app().store.Stats()
	t.Logf("%d calls answered in %v; %d events waiting to be written", calls, answered.Round(time.Millisecond), st.QueueLen)

	const within = 25 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	t0 := time.Now()
	err := g.app().store.Sync(ctx)
	took := time.Since(t0)
	left := g.app().store.Stats().QueueLen
	if err != nil {
		written := st.QueueLen - left
		t.Fatalf("the trace writer wrote %d of %d waiting events in %v (%.0f events/s) and %d are still queued: on slow writes it fell to a fraction of its throughput (at 150 calls/s the queue grows without bound)",
			written, st.QueueLen, within, float64(written)/within.Seconds(), left)
	}
	t.Logf("backlog of %d events written in %v (%.0f events/s)", st.QueueLen, took.Round(time.Millisecond), float64(st.QueueLen)/took.Seconds())
	var n int
	if err := g.db().QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != calls {
		t.Errorf("%d calls rows, want %d", n, calls)
	}
}
