package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a running child process of the benchmark.
type child struct {
	name  string
	cmd   *exec.Cmd
	ready childReady
	log   string // stderr file
	done  chan struct{}
	err   error
}

// startChild re-executes this binary in a child role and waits for its
// READY line. The child dies with the driver (Pdeathsig).
func startChild(ctx context.Context, name, role string, spec childSpec, workDir string, env []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own executable: %w", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding %s spec: %w", name, err)
	}
	logPath := workDir + "/" + name + ".log"
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s log: %w", name, err)
	}
	cmd := exec.Command(exe, "-child", role, "-spec", string(b))
	cmd.Stderr = lf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("%s stdout: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if l := sc.Text(); !sent && strings.HasPrefix(l, readyPrefix) {
				lines <- strings.TrimPrefix(l, readyPrefix)
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	wait, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	select {
	case l := <-lines:
		if err := json.Unmarshal([]byte(l), &c.ready); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s ready line: %w", name, err)
		}
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v); see %s:\n%s", name, c.err, logPath, tail(logPath, 2000))
	case <-wait.Done():
		c.stop()
		return nil, fmt.Errorf("%s not ready: %w; see %s", name, wait.Err(), logPath)
	}
}

// stop ends the child with SIGTERM (SIGKILL after 30s) and waits.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// memInfo is a process's resident memory from /proc/PID/status. RSS is
// anonymous memory (heap, stacks) plus file-backed pages, mostly the
// mapped executable: an 80 MB binary whose text the kernel maps with huge
// pages shows most of it as resident even when idle.
type memInfo struct {
	RSSMB  float64 `json:"rss_mb"`
	AnonMB float64 `json:"rss_anon_mb"`
	FileMB float64 `json:"rss_file_mb"`
	PeakMB float64 `json:"peak_rss_mb"` // VmHWM
	// PmdMB is the file-backed part mapped with 2 MB pages
	// (FilePmdMapped in smaps_rollup): whole huge pages count as resident.
	PmdMB float64 `json:"file_pmd_mapped_mb"`
}

func readMem(pid int) (memInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, fmt.Errorf("reading memory of %d: %w", pid, err)
	}
	var m memInfo
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			m.RSSMB = kb / 1024
		case "VmHWM:":
			m.PeakMB = kb / 1024
		case "RssAnon:":
			m.AnonMB = kb / 1024
		case "RssFile:":
			m.FileMB = kb / 1024
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "FilePmdMapped:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.PmdMB = kb / 1024
			}
		}
	}
	return m, nil
}

// clockTicks is USER_HZ, 100 on every Linux the benchmark targets.
const clockTicks = 100

// cpuSeconds is a process's user + system CPU time so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// selfCPU is this process's CPU time (the load generator's).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a connection.
func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the end of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var errSkipped = errors.New("skipped")
