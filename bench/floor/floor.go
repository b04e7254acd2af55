// Package floor is the benchmark's F3 floor: a Caddy HTTP handler
// (http.handlers.metis_bench_forward) that forwards every request to one
// upstream with its own tuned http.Transport, the way metis_gateway does,
// and nothing else: no authentication, no parsing, no translation, no cost,
// no tracing. Its latency and throughput are what the gateway's own
// forwarding costs inside Caddy; the gateway is measured against it.
//
// It buffers the request body (a gateway must read it), copies the
// end-to-end headers both ways and relays the answer with a pooled 32 KiB
// buffer, flushing after every read of a text/event-stream answer through
// http.NewResponseController (which, unlike an http.Flusher assertion,
// reaches through Caddy's response writer wrappers).
//
// Caddyfile:
//
//	metis_bench_forward http://127.0.0.1:9100
package floor

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(new(Forward))
	httpcaddyfile.RegisterHandlerDirective("metis_bench_forward", parseDirective)
	httpcaddyfile.RegisterDirectiveOrder("metis_bench_forward", httpcaddyfile.Before, "reverse_proxy")
}

// Forward is the http.handlers.metis_bench_forward handler.
type Forward struct {
	// Upstream is the base URL requests are sent to; the request's path
	// and query are appended.
	Upstream string `json:"upstream"`

	base      string
	transport *http.Transport
	client    *http.Client
}

// CaddyModule returns the Caddy module information.
func (*Forward) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.metis_bench_forward", New: func() caddy.Module { return new(Forward) }}
}

// Provision checks the upstream and builds the transport, tuned like the
// gateway's provider transports.
func (f *Forward) Provision(caddy.Context) error {
	u, err := url.Parse(f.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("metis_bench_forward: upstream %q is not an http(s) URL", f.Upstream)
	}
	f.base = strings.TrimRight(u.String(), "/")
	f.transport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 10 * time.Minute,
		WriteBufferSize:       8 << 10, // as the gateway's provider.go
		ReadBufferSize:        8 << 10,
	}
	f.client = &http.Client{Transport: f.transport}
	return nil
}

// Cleanup closes the idle upstream connections.
func (f *Forward) Cleanup() error {
	if f.transport != nil {
		f.transport.CloseIdleConnections()
	}
	return nil
}

// hop-by-hop and framing headers, never copied.
var skipHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true,
}

var (
	bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// ServeHTTP forwards the request and relays the answer.
func (f *Forward) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading request body: %w", err))
	}
	target := f.base + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("building upstream request: %w", err))
	}
	for k, vv := range r.Header {
		if !skipHeaders[k] {
			req.Header[k] = vv
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return caddyhttp.Error(http.StatusBadGateway, fmt.Errorf("upstream: %w", err))
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		if !skipHeaders[k] {
			h[k] = vv
		}
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if !stream && resp.ContentLength >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	cb := copyPool.Get().(*[]byte)
	defer copyPool.Put(cb)
	if !stream {
		_, _ = io.CopyBuffer(writerOnly{w}, resp.Body, *cb)
		return nil
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for {
		n, err := resp.Body.Read(*cb)
		if n > 0 {
			if _, werr := w.Write((*cb)[:n]); werr != nil {
				return nil // client gone; headers are out, nothing to report
			}
			if rc.Flush() != nil {
				return nil
			}
		}
		if err != nil {
			// io.EOF ends the stream; any other error means the upstream
			// broke off and the client sees a short stream.
			return nil
		}
	}
}

// writerOnly hides ReadFrom so that io.CopyBuffer uses the pooled buffer.
type writerOnly struct{ io.Writer }

// parseDirective reads `metis_bench_forward UPSTREAM`.
func parseDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	f := new(Forward)
	err := f.UnmarshalCaddyfile(h.Dispenser)
	return f, err
}

// UnmarshalCaddyfile sets the upstream from `metis_bench_forward UPSTREAM`.
func (f *Forward) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if !d.AllArgs(&f.Upstream) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Forward)(nil)
	_ caddy.CleanerUpper          = (*Forward)(nil)
	_ caddyhttp.MiddlewareHandler = (*Forward)(nil)
	_ caddyfile.Unmarshaler       = (*Forward)(nil)
)
