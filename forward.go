package metis

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// hopHeaders are never forwarded in either direction.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// dropRequestHeaders are client headers the gateway consumes: the gateway
// token never goes upstream, and neither do a developer's OpenAI account
// selectors (the SDKs send them when OPENAI_ORG_ID or OPENAI_PROJECT_ID is
// set): the provider account is the operator's, and OpenAI refuses a key
// with another organization's header (401 mismatched_organization).
var dropRequestHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Accept-Encoding": true, "Cookie": true,
	"X-Api-Key": true, "Authorization": true, "Metis-Api-Version": true, "X-Metis-Session-Id": true,
	"Openai-Organization": true, "Openai-Project": true,
	// The body goes upstream decoded (readBody).
	"Content-Encoding": true,
	// The body is read whole before it goes upstream: a client's
	// 100-continue would make the provider's transport wait (up to 1 s)
	// for an interim answer a server may never send.
	"Expect": true,
	// What a proxy in front of the gateway adds (nginx, a load balancer,
	// Caddy's reverse_proxy, Traefik, Envoy), with every X-Forwarded-*
	// header (newUpstreamRequest): the developers' internal addresses, host
	// names and client certificates are not the vendor's to see, and a
	// client straight at the provider sends none of them.
	"X-Original-Forwarded-For": true, "X-Original-Uri": true, "X-Scheme": true, "X-Envoy-External-Address": true,
	"Cf-Connecting-Ip": true, "True-Client-Ip": true, "X-Client-Ip": true, "X-Cluster-Client-Ip": true,
	"Forwarded": true, "X-Real-Ip": true, "Via": true,
	// The same from CDNs in front: Cloudflare's other forms, Fastly, Azure
	// Front Door, CloudFront.
	"Cf-Connecting-Ipv6": true, "Cf-Pseudo-Ipv4": true, "Fastly-Client-Ip": true, "X-Azure-Clientip": true,
	"X-Azure-Socketip": true, "Cloudfront-Viewer-Address": true, "Fly-Client-Ip": true,
	"X-Vercel-Forwarded-For": true, "X-Nf-Client-Connection-Ip": true, "Incap-Client-Ip": true,
	"X-Sucuri-Clientip": true,
}

// identityHeader reports whether the canonical header name k is one an
// authenticating proxy in front of the gateway adds (Caddy's forward_auth
// copy_headers, nginx auth_request): who the developer is, their e-mail
// address and groups, sometimes their access token. Like the addresses
// above, they are the team's, not the vendor's (audit 25C:
// X-Auth-Request-Email and Remote-Groups reached the provider). Switched on
// the first letters, so the SDKs' X-Stainless-* headers cost no compare.
func identityHeader(k string) bool {
	var prefixes []string
	switch {
	case len(k) < 4:
		return false
	case k[0] == 'X' && k[1] == '-':
		switch k[2] {
		case 'A':
			prefixes = []string{"X-Auth-Request-", "X-Authentik-", "X-Amzn-Oidc-"} // oauth2-proxy, Authentik, AWS ALB
		case 'G':
			prefixes = []string{"X-Goog-Authenticated-User-", "X-Goog-Iap-"} // Google IAP
		case 'M':
			prefixes = []string{"X-Ms-Client-Principal", "X-Ms-Token-"} // Azure App Service
		case 'P':
			prefixes = []string{"X-Pomerium-"}
		case 'R':
			prefixes = []string{"X-Remote-"}
		case 'T':
			prefixes = []string{"X-Token-Subject", "X-Token-User-"} // caddy-security's injected claims
		case 'V':
			prefixes = []string{"X-Vouch-"} // Vouch Proxy
		case 'W':
			prefixes = []string{"X-Webauth-"}
		}
	case k[0] == 'C':
		prefixes = []string{"Cf-Access-"} // Cloudflare Access
	case k[0] == 'R':
		prefixes = []string{"Remote-"} // Authelia, Authentik
	case k[0] == 'T':
		prefixes = []string{"Tailscale-User-"} // Tailscale serve
	}
	for _, p := range prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// dropResponseHeaders are upstream headers not relayed to clients: framing
// the gateway redoes, the operator's provider account identifiers, and the
// policies of the provider's own origin. OpenAI's Alt-Svc (h3=":443")
// replaced Caddy's own and told an HTTP/3 client that the gateway's host
// serves QUIC on port 443 (audit 25C), as Caddy's reverse_proxy also drops
// it; HSTS (includeSubDomains; preload), NEL and Report-To would bind the
// gateway's site, and its subdomains, to the provider's edge policies.
var dropResponseHeaders = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Set-Cookie": true,
	"Anthropic-Organization-Id": true, "Openai-Organization": true, "Openai-Project": true,
	"Alt-Svc": true, "Strict-Transport-Security": true, "Nel": true, "Report-To": true, "Reporting-Endpoints": true,
}

// newUpstreamRequest builds one attempt's request.
func (c *call) newUpstreamRequest(ctx context.Context) (*http.Request, error) {
	p := c.res.prov
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(c.path, c.rawQuery), bytes.NewReader(c.body))
	if err != nil {
		return nil, err
	}
	body := c.body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	h := req.Header
	if !c.cross {
		conn := c.r.Header["Connection"]
		for k, vv := range c.r.Header {
			if hopHeaders[k] || dropRequestHeaders[k] || strings.HasPrefix(k, "X-Forwarded-") || identityHeader(k) || namedIn(conn, k) {
				continue
			}
			h[k] = vv
		}
	} else if ua := c.r.Header.Get("User-Agent"); ua != "" {
		h.Set("User-Agent", ua)
	}
	h.Set("Content-Type", "application/json")
	if c.stream && (c.cross || h.Get("Accept") == "") {
		// A same-shape client's own Accept goes as sent (Claude Code sends
		// application/json on its streams, and the provider streams anyway).
		h.Set("Accept", "text/event-stream")
	}
	for k, vv := range p.headers {
		h[k] = vv
	}
	if c.cross && c.tstate != nil && len(c.tstate.Betas) > 0 {
		// The translated body's own needs, after any the operator's
		// header lines give.
		h.Set("Anthropic-Beta", strings.Join(append(slices.Clip(h.Values("Anthropic-Beta")), c.tstate.Betas...), ","))
	}
	p.setAuth(h)
	return req, nil
}

// staleConnWindow is how soon after the request was written a pooled
// connection's failure counts as the provider having closed it before
// reading the request, and staleConnIdle how long the connection must
// have sat idle before (see connTrace.stale).
const (
	staleConnWindow = 250 * time.Millisecond
	staleConnIdle   = time.Second
)

// connTrace notes, for one attempt, how its connection came from the pool
// and when the request had been written on it.
type connTrace struct {
	idle  time.Duration // how long the pooled connection had been idle; 0 for a new or busy one
	wrote atomic.Int64  // unix ns; set by the transport's writing goroutine
	conn  net.Conn      // the attempt's connection
	// errConn is the connection that carried the provider's error answer
	// the attempt retries, until a resend on it (afterError).
	errConn net.Conn
}

// context returns ctx with t's hooks, for one call's attempts in turn.
func (t *connTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			t.idle, t.conn = 0, i.Conn
			if i.Reused && i.WasIdle {
				t.idle = max(i.IdleTime, time.Nanosecond)
			}
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { t.wrote.Store(time.Now().UnixNano()) },
	})
}

// stale reports whether err is, most likely, a pooled connection the
// provider had closed while it sat idle (its keep-alive timer, gunicorn's
// 2 s, uvicorn's and Node's 5 s, firing as the request went out): the
// connection had been idle at least staleConnIdle, and ended with no
// answer within staleConnWindow of the request's writing (or Go saw it
// close while idle). A provider that read the request would have to fail
// at once on a connection idle until then; a connection in use that fails
// is a connection failure like any other, as is one that fails later. Go's
// transport resends such a request itself only when it is idempotent.
func (t *connTrace) stale(err error) bool {
	if t.idle < staleConnIdle {
		return false
	}
	if strings.Contains(err.Error(), "server closed idle connection") {
		return true
	}
	return t.closedAsWritten(err)
}

// afterError reports whether err is the failure, as the request went out,
// of a retry sent on the connection that had just carried the provider's
// error answer: a provider or proxy that closes its connection after an
// error without saying so (no Connection: close) closed it under the
// retry, which it never read (audit 24K, review 24R2: two requests for
// three attempts). The error's body is closed unread to keep such a
// connection out of the pool, but one read whole (a 429's, read for
// quotaExhausted) or without a body goes back to it.
func (t *connTrace) afterError(err error) bool {
	return t.conn != nil && t.conn == t.errConn && t.closedAsWritten(err)
}

// closedAsWritten reports whether err is the connection ending, without
// an answer, within staleConnWindow of the request's writing.
func (t *connTrace) closedAsWritten(err error) bool {
	wrote := t.wrote.Load()
	if wrote == 0 || time.Since(time.Unix(0, wrote)) > staleConnWindow {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// forward sends the request upstream, retrying 429, 5xx, 529 and
// connection failures — nothing has reached the client yet — up to the
// provider's max_retries. A retry waits for the current failure's
// retry-after-ms or retry-after when it fits within max_retry_wait (else
// that failure is returned), or an exponential backoff with jitter.
func (c *call) forward(ctx context.Context) (*http.Response, error) {
	p := c.res.prov
	// c.attempts counts on from a stream that failed before its first
	// event; attempt counts the requests max_retries bounds, which a resend
	// on a stale connection (c.resent), on the connection of an error
	// answer (c.errResends) or after a thinking binding refusal (c.rebound)
	// is not.
	var ct connTrace
	traced := ct.context(ctx)
	for attempt := c.retries(); ; attempt++ {
		c.attempts = attempt + 1 + c.resends()
		ct.idle, ct.conn = 0, nil
		ct.wrote.Store(0)
		req, err := c.newUpstreamRequest(traced)
		if err != nil {
			return nil, err
		}
		c.upstreamReqID = ""
		t0 := time.Now()
		// The transport itself, not an http.Client: no redirect following
		// (answer turns a provider's 3xx into an error) and no per-request
		// header copying for it.
		resp, err := p.transport.RoundTrip(req)
		p.latency.Observe(time.Since(t0).Seconds())
		if err != nil && ctx.Err() == nil && ct.afterError(err) {
			// Most likely the provider never had it: the same attempt
			// again, on a connection of its own (once an error answer).
			// Counted in attempts all the same: a provider, or a proxy,
			// that read the retry before dropping the connection had two
			// requests (review 27C).
			c.errResends++
			ct.errConn = nil
			c.g.logger.Info("provider closed the connection of its error answer as the retry went out; sending it again",
				zapTurn(c.turnID), zap.String("provider", p.name), zap.Int("attempt", c.attempts), zapErr(err))
			attempt--
			continue
		}
		if err != nil && !c.resent && ctx.Err() == nil && ct.stale(err) {
			// Once a call, not one of max_retries' retries (the provider
			// most likely never had it), and counted in attempts: it is
			// another request sent.
			c.resent = true
			c.g.logger.Info("provider closed a pooled connection as the request went out; resending it",
				zapTurn(c.turnID), zap.String("provider", p.name), zap.Int("attempt", c.attempts), zapErr(err))
			attempt--
			continue
		}
		c.cutInFlight = false
		if err != nil && ct.wrote.Load() != 0 {
			c.unanswered = true
			// Cut while the provider worked on it: the client left, or the
			// timeout ran out, waiting for the answer to a request it had.
			c.cutInFlight = ctx.Err() != nil || isTimeout(err) && !connectFailed(err)
		}
		if err == nil {
			decodeBody(resp)
		}
		if err == nil && resp.StatusCode >= 300 {
			// An error's body is small: one that stalls after its headers
			// would hold the call, and its retries, past the timeout,
			// which covers headers only.
			watchBody(resp, min(p.timeout, errorBodyWait), false, errBodyStalled)
		}
		if err != nil {
			// A timeout waiting for the answer is not retried (the provider
			// may be at work on the request); one connecting is.
			if ctx.Err() != nil || isTimeout(err) && !connectFailed(err) || attempt >= p.maxRetries {
				return nil, err
			}
			wait := backoff(attempt, p.maxRetryWait)
			c.g.logger.Info("provider request failed; retrying",
				zapTurn(c.turnID), zap.String("provider", p.name), zap.Int("attempt", c.attempts),
				zap.Duration("wait", wait), zapErr(err))
			if !sleepCtx(ctx, wait) {
				return nil, ctx.Err()
			}
			continue
		}
		if !retryable(resp) || attempt >= p.maxRetries {
			return resp, nil
		}
		if resp.StatusCode == http.StatusTooManyRequests && quotaExhausted(resp) {
			return resp, nil // out of credit: waiting will not help
		}
		wait, ok := retryAfter(resp.Header)
		if ok && wait > p.maxRetryWait {
			return resp, nil // the provider asks for longer than we may wait: hand the error back
		}
		if !ok {
			wait = backoff(attempt, p.maxRetryWait)
		}
		c.g.logger.Info("provider answered an error status; retrying",
			zapTurn(c.turnID), zap.String("provider", p.name), zap.Int("status", resp.StatusCode),
			zap.Int("attempt", c.attempts), zap.Duration("wait", wait))
		// Closed unread, so that the connection goes with it: a provider
		// or proxy that closes its connection after an error, without
		// saying so, had the retry fail on it with EOF, a retry used up
		// on a request it never saw (audit 24K). The retry waits anyway;
		// a connection of its own costs it a handshake.
		_ = resp.Body.Close()
		ct.errConn = ct.conn
		c.upstreamReqID = p.scrubString(upstreamRequestID(resp.Header))
		if !sleepCtx(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// retries is how many of the call's requests count against max_retries:
// all but its first and its resends.
func (c *call) retries() int {
	return c.attempts - c.resends()
}

// resends counts the call's requests sent again that max_retries does not
// bound: after a stale connection, on the connection of an error answer,
// after a thinking binding refusal.
func (c *call) resends() int {
	n := c.errResends
	if c.resent {
		n++
	}
	if c.rebound {
		n++
	}
	return n
}

// upstreamRequestID is the request id of a provider's answer.
func upstreamRequestID(h http.Header) string {
	if id := h.Get("Request-Id"); id != "" {
		return id
	}
	return h.Get("X-Request-Id")
}

// quotaExhausted reports whether a 429 means the account is out of credit
// rather than rate limited: OpenAI's insufficient_quota, or a vendor's
// "insufficient balance" (z.ai's code 1113). Waiting does not mend it, so
// it is not retried. It reads the small error body and puts it back for
// relaying.
func quotaExhausted(resp *http.Response) bool {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	var rest io.Reader = bytes.NewReader(b)
	if err != nil {
		rest = io.MultiReader(rest, failingReader{err}) // relayError learns the body stopped
	}
	resp.Body = io.NopCloser(rest)
	lower := bytes.ToLower(b)
	for _, s := range outOfCredit {
		if bytes.Contains(lower, []byte(s)) {
			return true
		}
	}
	return false
}

// failingReader's reads fail with err.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// outOfCredit are lower-case phrases of 429 bodies that mean the account
// is out of credit.
var outOfCredit = [...]string{"insufficient_quota", "insufficient balance", "insufficient_balance"}

func retryable(resp *http.Response) bool {
	if resp.Header.Get("X-Should-Retry") == "false" {
		return false
	}
	s := resp.StatusCode
	return s == http.StatusTooManyRequests || s >= 500
}

// retryAfter reads retry-after-ms, then retry-after (seconds or HTTP date).
func retryAfter(h http.Header) (time.Duration, bool) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return durationOf(ms, time.Millisecond), true
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return durationOf(s, time.Second), true
		}
		if t, err := http.ParseTime(v); err == nil {
			d := time.Until(t)
			if d < 0 {
				d = 0
			}
			return d, true
		}
	}
	return 0, false
}

// durationOf is n units, or the longest Duration when that is longer: a
// plain conversion of a retry-after of centuries wraps to a negative wait,
// and the gateway retried at once.
func durationOf(n float64, unit time.Duration) time.Duration {
	if d := n * float64(unit); d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// backoff is 500ms × 2^attempt with ±25% jitter, capped by limit and 8s.
func backoff(attempt int, limit time.Duration) time.Duration {
	d := 500 * time.Millisecond << min(attempt, 5)
	d = time.Duration(float64(d) * (0.75 + rand.Float64()/2))
	return min(d, limit, 8*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return strings.Contains(err.Error(), "timeout awaiting response headers")
}

// connectFailed reports whether err is a failure to connect to the
// provider (dial or TLS handshake): the request was never sent.
func connectFailed(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "proxyconnect") {
		return true // proxyconnect: reaching the HTTP(S)_PROXY the transport uses
	}
	return strings.Contains(err.Error(), "TLS handshake timeout")
}

// decodeBody undoes a Content-Encoding the transport left in place: it
// decodes only the gzip it asked for, and a provider may answer x-gzip
// (gzip's old name, RFC 9110 §8.4.1.3) or deflate anyway. Another
// encoding stays named in the header: answer refuses it.
func decodeBody(resp *http.Response) {
	var open func(io.Reader) (io.Reader, error)
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "":
		return
	case "identity":
	case "gzip", "x-gzip":
		open = func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
	case "deflate":
		open = openDeflate
	default:
		return
	}
	resp.Header.Del("Content-Encoding")
	if open != nil {
		resp.Header.Del("Content-Length")
		resp.ContentLength, resp.Uncompressed = -1, true
		resp.Body = &decodedBody{body: resp.Body, open: open}
	}
}

// openDeflate reads "deflate": zlib's format (RFC 9110 §8.4.1.2), or the
// bare deflate stream some servers send under that name.
func openDeflate(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	h, err := br.Peek(2)
	if len(h) == 1 && err == io.EOF {
		err = io.ErrUnexpectedEOF // one byte is no deflate stream, nor an empty body
	}
	if err != nil {
		return nil, err
	}
	if h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 { // a zlib header
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// decodedBody decodes its body from the first Read on, so that waiting for
// the encoding's header is a read of the body (timed as one), not of the
// response's headers.
type decodedBody struct {
	body io.ReadCloser
	open func(io.Reader) (io.Reader, error)
	r    io.Reader
	err  error
}

func (d *decodedBody) Read(p []byte) (int, error) {
	if d.r == nil && d.err == nil {
		d.r, d.err = d.open(d.body)
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.r.Read(p)
}

func (d *decodedBody) Close() error { return d.body.Close() }

// corrupt reports whether err is a decoder's finding (the transport's gzip
// or decodedBody's) that a body is not what its encoding says: the
// provider's answer is broken, and asking again would get the same.
func corrupt(err error) bool {
	var ce flate.CorruptInputError
	return errors.As(err, &ce) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, zlib.ErrHeader) || errors.Is(err, zlib.ErrChecksum) || errors.Is(err, zlib.ErrDictionary)
}

// isEventStream reports whether an answer's Content-Type is a stream's.
func isEventStream(h http.Header) bool {
	const sse = "text/event-stream"
	ct := strings.TrimSpace(h.Get("Content-Type"))
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse) // media types ignore case
}

// copyResponseHeaders relays upstream response headers to the client.
func copyResponseHeaders(dst, src http.Header) {
	conn := src["Connection"]
	for k, vv := range src {
		if hopHeaders[k] || dropResponseHeaders[k] || namedIn(conn, k) {
			continue
		}
		dst[k] = vv
	}
}

// namedIn reports whether a message's Connection header values name the
// header name: a hop-by-hop header of its sender's (RFC 9110 §7.6.1),
// never forwarded.
func namedIn(connection []string, name string) bool {
	for _, v := range connection {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), name) {
				return true
			}
		}
	}
	return false
}
