package metis

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
)

// Provider types: the wire shape an upstream speaks.
const (
	shapeAnthropic = "anthropic"
	shapeOpenAI    = "openai"
)

// ProviderConfig is one upstream LLM provider.
type ProviderConfig struct {
	// Name identifies the provider in model references ("name:model").
	Name string `json:"name"`
	// Type is the wire format the provider speaks: "anthropic" or "openai".
	// Default: the name, when it is one of those.
	Type string `json:"type,omitempty"`
	// APIKey is the provider key. Write it as a {env.X} placeholder: it is
	// resolved at provision time and so never appears in the config JSON.
	APIKey string `json:"api_key,omitempty"`
	// BaseURL follows the SDK convention: Anthropic without /v1
	// (https://api.anthropic.com), OpenAI with it (https://api.openai.com/v1).
	BaseURL string `json:"base_url,omitempty"`
	// Timeout bounds the wait for the upstream's response headers, and for
	// the rest of an error answer after them (at most 30s). A stream is
	// never cut for its length, only after this long without a byte (at
	// least 10m). Default 10m.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxRetries is how many times a failed call (429, 5xx, 529, connection
	// failure before any byte reached the client) is retried. Default 2.
	MaxRetries *int `json:"max_retries,omitempty"`
	// MaxRetryWait caps the wait before a retry; a retry-after beyond it
	// returns the error instead. Default 30s.
	MaxRetryWait caddy.Duration `json:"max_retry_wait,omitempty"`
	// Auth is how the key is sent: "x-api-key" (the anthropic type's
	// default) or "bearer" (Authorization: Bearer, the openai type's).
	// Some Anthropic-compatible vendors take only a bearer token.
	Auth string `json:"auth,omitempty"`
	// StreamUsage "off" stops the gateway adding
	// stream_options.include_usage to streamed requests, for servers that
	// refuse the field; such streams are priced from whatever usage the
	// server reports anyway, or estimated. openai type only.
	StreamUsage string `json:"stream_usage,omitempty"`
	// MaxTokensField is where a translated request's output limit goes:
	// "max_completion_tokens" (default, OpenAI's) or "max_tokens", for
	// servers that refuse the former. openai type only.
	MaxTokensField string `json:"max_tokens_field,omitempty"`
	// SystemMessages "first" merges a translated request's later system
	// messages (Claude Code sends one mid-conversation) into the leading
	// one, for chat templates that allow a system message only first;
	// default "in_place". openai type only.
	SystemMessages string `json:"system_messages,omitempty"`
	// PromptCache "auto" (default) asks for Anthropic's automatic prompt
	// caching (a top-level cache_control) on a translated request that
	// marks no cache breakpoint itself: an OpenAI-shape client cannot mark
	// one, and OpenAI caches long prompts unasked. "off" sends none, for
	// Anthropic-compatible servers that refuse the field. anthropic type
	// only.
	PromptCache string `json:"prompt_cache,omitempty"`
	// Headers are set on every request to the provider, replacing a
	// client's header of the same name: another gateway's own key or
	// routing in front of the vendor (Helicone-Auth, x-portkey-*,
	// cf-aig-authorization), OpenAI-Project, Azure's api-key. Values may be
	// {env.X} or {file.X} placeholders, resolved at provision time like
	// APIKey, and are never logged.
	Headers map[string]string `json:"headers,omitempty"`
	// CAFile names PEM certificates trusted, besides the system's roots,
	// for the provider's HTTPS: a server behind a private certificate
	// authority. Only for an https:// BaseURL.
	CAFile string `json:"ca_file,omitempty"`
}

// provider is a provisioned ProviderConfig: resolved secrets, parsed URL
// and its own tuned transport.
type provider struct {
	name         string
	typ          string
	apiKey       string
	keyWarned    logGate             // spaces warnRefusedKey's lines
	failed       burstLog            // "upstream call failed" lines (warnFailed)
	errored      burstLog            // "provider answered an error" lines (warnErrored)
	keyEmptied   string              // what the log says of an api_key that came out empty (emptiedPlaceholder)
	endpoint     string              // base URL without its query and trailing slash
	baseQuery    string              // the base URL's query, on every upstream URL
	transport    *http.Transport     // no timeout that would cut streams
	latency      prometheus.Observer // metis_upstream_response_seconds{provider}
	maxRetries   int
	maxRetryWait time.Duration
	timeout      time.Duration // the wait for response headers
	bearer       bool          // the key goes as Authorization: Bearer
	compat       compatOptions
	headers      http.Header // ProviderConfig.Headers, resolved
	// secrets are the provider's credentials a client must never see (its
	// api_key and its credential header lines' values, credentialSecrets),
	// found once, at provision.
	secrets []string
	// bindingEnforced is set once the provider refused a thinking block
	// bound to a different conversation (its account enforces Anthropic's
	// prefix check): translated requests carrying thinking then ask for
	// such blocks to be dropped (anthropic.DropMismatchedThinking).
	bindingEnforced atomic.Bool
}

// compatOptions adapt requests to an OpenAI-compatible server that is not
// OpenAI's (ProviderConfig's StreamUsage, MaxTokensField, SystemMessages),
// or to an Anthropic-compatible one (PromptCache).
type compatOptions struct {
	noStreamUsage, maxTokens, systemFirst bool
	noAutoCache                           bool
}

// providerOptions checks pc's auth and compatibility options and returns
// them for a provider of type typ.
func providerOptions(pc *ProviderConfig, typ string) (bearer bool, o compatOptions, err error) {
	choose := func(opt, v string, values ...string) (string, error) {
		if v == "" {
			return values[0], nil
		}
		for _, ok := range values {
			if v == ok {
				return v, nil
			}
		}
		return "", fmt.Errorf("provider %q: %s must be %s, got %q", pc.Name, opt, strings.Join(values, " or "), v)
	}
	defAuth, otherAuth := "x-api-key", "bearer"
	if typ == shapeOpenAI {
		defAuth, otherAuth = otherAuth, defAuth
	}
	auth, err := choose("auth", pc.Auth, defAuth, otherAuth)
	if err != nil {
		return false, o, err
	}
	if typ == shapeOpenAI && auth != "bearer" {
		return false, o, fmt.Errorf("provider %q: auth x-api-key is for the anthropic type", pc.Name)
	}
	su, err := choose("stream_usage", pc.StreamUsage, "on", "off")
	if err != nil {
		return false, o, err
	}
	mt, err := choose("max_tokens_field", pc.MaxTokensField, "max_completion_tokens", "max_tokens")
	if err != nil {
		return false, o, err
	}
	sm, err := choose("system_messages", pc.SystemMessages, "in_place", "first")
	if err != nil {
		return false, o, err
	}
	pcache, err := choose("prompt_cache", pc.PromptCache, "auto", "off")
	if err != nil {
		return false, o, err
	}
	o = compatOptions{noStreamUsage: su == "off", maxTokens: mt == "max_tokens", systemFirst: sm == "first"}
	if typ != shapeOpenAI && o != (compatOptions{}) {
		return false, o, fmt.Errorf("provider %q: stream_usage, max_tokens_field and system_messages are for the openai type", pc.Name)
	}
	if typ == shapeOpenAI && pc.PromptCache != "" {
		return false, o, fmt.Errorf("provider %q: prompt_cache is for the anthropic type", pc.Name)
	}
	o.noAutoCache = pcache == "off"
	return auth == "bearer", o, nil
}

// managedHeaders are request headers the gateway itself decides: framing,
// the body's encoding and type, and the connection. A provider's headers
// may not set them.
var managedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Content-Encoding": true,
	"Transfer-Encoding": true, "Accept-Encoding": true, "Expect": true, "Te": true, "Trailer": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Upgrade": true,
}

// providerHeaders resolves and checks pc's headers. keyed says whether the
// provider sends a key of its own, whose header (Authorization for a
// bearer token, else X-Api-Key) they may then not replace. Errors name a
// header, never its value.
func providerHeaders(pc *ProviderConfig, repl *caddy.Replacer, bearer, keyed bool) (http.Header, error) {
	if len(pc.Headers) == 0 {
		return nil, nil
	}
	keyHeader := "X-Api-Key"
	if bearer {
		keyHeader = "Authorization"
	}
	h := make(http.Header, len(pc.Headers))
	for name, raw := range pc.Headers {
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			return nil, fmt.Errorf("provider %q: %q is not a header name", pc.Name, name)
		case canon == "Proxy-Authorization" || canon == "Proxy-Authenticate":
			// Meant for an egress proxy, it would reach the vendor inside
			// the tunnel.
			return nil, fmt.Errorf("provider %q: header %s would go to the provider, not to a proxy; give a proxy's credentials in HTTPS_PROXY (http://user:password@host:port)", pc.Name, canon)
		case managedHeaders[canon]:
			return nil, fmt.Errorf("provider %q: header %s is the gateway's to set", pc.Name, canon)
		case keyed && canon == keyHeader:
			return nil, fmt.Errorf("provider %q: header %s would replace the provider key; leave api_key out to send a credential of your own", pc.Name, canon)
		case h[canon] != nil:
			return nil, fmt.Errorf("provider %q: header %s given twice", pc.Name, canon)
		}
		v := strings.TrimSpace(repl.ReplaceKnown(raw, ""))
		switch {
		case v == "" && strings.TrimSpace(raw) != "":
			return nil, fmt.Errorf("provider %q: header %s %s came out empty (an unset environment variable, a missing file?)", pc.Name, canon, quotedPlaceholder(raw))
		case v == "":
			return nil, fmt.Errorf("provider %q: header %s needs a value", pc.Name, canon)
		case strings.Contains(v, "{http."):
			return nil, fmt.Errorf("provider %q: header %s: request placeholders ({http.…}) are not filled in; a header's value is fixed when the config loads", pc.Name, canon)
		case !httpguts.ValidHeaderFieldValue(v):
			return nil, fmt.Errorf("provider %q: header %s contains a control character (a line break inside the value?)", pc.Name, canon)
		}
		h[canon] = []string{v}
	}
	return h, nil
}

// providerTLS returns the TLS settings of a provider with a ca_file: its
// certificates added to the system's roots (which an https:// proxy
// between, verified with the same settings, may need).
func providerTLS(pc *ProviderConfig, repl *caddy.Replacer) (*tls.Config, error) {
	path := strings.TrimSpace(repl.ReplaceKnown(pc.CAFile, ""))
	if path == "" {
		return nil, fmt.Errorf("provider %q: ca_file %q came out empty", pc.Name, pc.CAFile)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("provider %q: reading ca_file: %w", pc.Name, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("provider %q: ca_file %s holds no PEM certificate", pc.Name, path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func defaultBaseURL(typ string) string {
	if typ == shapeAnthropic {
		return "https://api.anthropic.com"
	}
	return "https://api.openai.com/v1"
}

func newProvider(pc *ProviderConfig) (*provider, error) {
	if pc == nil || pc.Name == "" {
		return nil, fmt.Errorf("provider without a name")
	}
	typ := pc.Type
	if typ == "" {
		typ = pc.Name
	}
	if typ != shapeAnthropic && typ != shapeOpenAI {
		return nil, fmt.Errorf("provider %q: type must be anthropic or openai, got %q", pc.Name, typ)
	}
	repl := caddy.NewReplacer()
	base := strings.TrimSpace(repl.ReplaceKnown(pc.BaseURL, ""))
	switch {
	case base == "" && pc.BaseURL != "":
		// Not the public API: a vendor's key and the team's prompts would
		// go there.
		return nil, fmt.Errorf("provider %q: base_url %q came out empty (an unset environment variable, a missing file?)", pc.Name, pc.BaseURL)
	case base == "":
		base = defaultBaseURL(typ)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider %q: base_url %q is not an http(s) URL", pc.Name, base)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("provider %q: base_url %q may not have a #fragment", pc.Name, pc.BaseURL)
	}
	// A query (Azure's ?api-version=) stays at the end of every upstream
	// URL, after the API path and before the client's own query.
	baseQuery := u.RawQuery
	u.RawQuery, u.ForceQuery = "", false
	timeout := time.Duration(pc.Timeout)
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	retries := 2
	if pc.MaxRetries != nil {
		if *pc.MaxRetries < 0 {
			return nil, fmt.Errorf("provider %q: max_retries must not be negative", pc.Name)
		}
		retries = *pc.MaxRetries
	}
	wait := time.Duration(pc.MaxRetryWait)
	if wait <= 0 {
		wait = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
		// Each connection holds both buffers for its life: 32 KiB each
		// took 290 MB at 4,500 streams in flight (audit 12M). Events and
		// answers are small, and a larger read or write bypasses them.
		WriteBufferSize: 8 << 10,
		ReadBufferSize:  8 << 10,
	}
	bearer, compat, err := providerOptions(pc, typ)
	if err != nil {
		return nil, err
	}
	// A key file's trailing blank line, or a stray newline in the
	// environment, would make every call fail in the transport ("invalid
	// header field value"), reported as an unreachable provider.
	apiKey := strings.TrimSpace(repl.ReplaceKnown(pc.APIKey, ""))
	if strings.ContainsFunc(apiKey, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("provider %q: api_key contains a control character (a line break inside the key?)", pc.Name)
	}
	headers, err := providerHeaders(pc, repl, bearer, apiKey != "")
	if err != nil {
		return nil, err
	}
	if pc.CAFile != "" {
		if u.Scheme != "https" {
			return nil, fmt.Errorf("provider %q: ca_file is for an https:// base_url, not %q", pc.Name, base)
		}
		if tr.TLSClientConfig, err = providerTLS(pc, repl); err != nil {
			return nil, err
		}
	}
	return &provider{
		keyEmptied:   emptiedPlaceholder(apiKey, pc.APIKey),
		headers:      headers,
		bearer:       bearer,
		compat:       compat,
		secrets:      credentialSecrets(apiKey, headers),
		name:         pc.Name,
		typ:          typ,
		apiKey:       apiKey,
		endpoint:     strings.TrimRight(u.String(), "/"),
		baseQuery:    baseQuery,
		transport:    tr,
		latency:      mUpstreamLatency.WithLabelValues(pc.Name),
		maxRetries:   retries,
		maxRetryWait: wait,
		timeout:      timeout,
	}, nil
}

// tlsHandshakeTimeout bounds a provider connection's TLS handshake (a
// variable for tests).
var tlsHandshakeTimeout = 10 * time.Second

// url returns the upstream URL for an API path such as "/messages".
// Anthropic base URLs have no /v1, OpenAI ones do (SDK conventions).
func (p *provider) url(path, rawQuery string) string {
	s := p.endpoint
	if p.typ == shapeAnthropic {
		s += "/v1"
	}
	s += path
	switch {
	case p.baseQuery != "" && rawQuery != "":
		s += "?" + p.baseQuery + "&" + rawQuery
	case p.baseQuery != "":
		s += "?" + p.baseQuery
	case rawQuery != "":
		s += "?" + rawQuery
	}
	return s
}

// setAuth puts the provider key on an upstream request; a provider without
// a key (a local OpenAI-compatible server, or a missing {env.X}) gets no
// credential header rather than an empty one.
func (p *provider) setAuth(h http.Header) {
	if p.typ == shapeAnthropic && h.Get("Anthropic-Version") == "" {
		h.Set("Anthropic-Version", "2023-06-01")
	}
	switch {
	case p.apiKey == "":
	case p.bearer:
		h.Set("Authorization", "Bearer "+p.apiKey)
	default:
		h.Set("X-Api-Key", p.apiKey)
	}
}

// authWarnEvery spaces the log warnings about a provider refusing its key.
const authWarnEvery = 10 * time.Second

// warnRefusedKey logs, at most once per authWarnEvery, that the provider
// answered 401 or 403 to the gateway's key for it. The client gets the
// provider's error unmodified, which Claude Code shows as a bad API key:
// the operator needs to learn it is the provider key, not the developer's.
func (p *provider) warnRefusedKey(logger *zap.Logger, status int) {
	if !p.keyWarned.Allow(authWarnEvery) {
		return
	}
	msg := "provider refused the gateway's requests: check the provider's api_key (and, for a 403, what the key may do)"
	// A credential of the operator's own may be in a header line (Azure's
	// api-key, Helicone-Auth in front of the vendor): name the headers,
	// never their values.
	names := strings.Join(slices.Sorted(maps.Keys(p.headers)), ", ")
	switch {
	case p.keyEmptied != "":
		// An api_key was written and came out empty (an unset {env.X}):
		// that is the likelier cause, whatever the header lines hold.
		msg = "provider refused a request without an API key; the provider's api_key " + p.keyEmptied + " came out empty"
		if names != "" {
			msg += " (if a header line carries its credential instead, check it: " + names + ")"
		}
	case p.apiKey == "" && names != "":
		msg = "provider refused the gateway's requests: check the credential in the provider's header lines (" + names + ")"
	case names != "":
		msg = "provider refused the gateway's requests: check the provider's api_key, or a credential in its header lines (" + names + ")"
	case p.apiKey == "":
		msg = "provider refused a request without an API key; the provider's api_key is empty"
	}
	logger.Warn(msg, zap.String("provider", p.name), zap.Int("status", status))
}

// emptiedPlaceholder is what the log says of an api_key that came out
// empty ("" when it did not): the text as written when it is only
// placeholders naming an environment variable or a file, which tells the
// operator what to set. Anything else is not shown: {env.<anything>} is
// a known placeholder, so a key written inside the braces
// ({env.sk-ant-…}, {env.KEY=sk-…}) comes out empty too (review 29R).
func emptiedPlaceholder(resolved, written string) string {
	if resolved != "" || strings.TrimSpace(written) == "" {
		return "" // a key, or none written: a server that needs none
	}
	for _, m := range placeholderRe.FindAllStringSubmatch(written, -1) {
		if m[1] != "" && !envNameRe.MatchString(m[1]) {
			return "(a placeholder, not shown)"
		}
	}
	if placeholdersOnlyRe.MatchString(written) {
		return written
	}
	return "(a placeholder, not shown)"
}

// quotedPlaceholder is a header line's value that came out empty as a
// config error shows it: quoted when emptiedPlaceholder would echo it, a
// key pasted inside its braces not shown (review 29R3).
func quotedPlaceholder(raw string) string {
	if shown := emptiedPlaceholder("", raw); shown != raw {
		return shown
	}
	return strconv.Quote(raw)
}

var (
	// placeholdersOnlyRe matches text made only of {env.X} and {file.PATH}
	// placeholders, PATH with a '/' (credentials have none; GLM's have a
	// '.'). Caddy logs a file it cannot read by name itself.
	placeholdersOnlyRe = regexp.MustCompile(`^(\s*(\{env\.[^{}]+\}|\{file\.[^{}]*/[^{}]*\}))+\s*$`)
	// placeholderRe finds the {env.X} placeholders, X in group 1.
	placeholderRe = regexp.MustCompile(`\{env\.([^{}]*)\}`)
	// envNameRe is what an environment variable's name looks like by
	// convention: upper case words joined by '_' (ANTHROPIC_API_KEY), or a
	// short word. Keys are long and mixed or lower case (gsk_…, hf_…),
	// and {env.<key>} comes out empty as an unset variable does.
	envNameRe = regexp.MustCompile(`^([A-Z][A-Z0-9]*(_[A-Z0-9]+)+|[A-Z][A-Z0-9]{0,15})$`)
)

// secretRemoved is what scrubSecrets puts in place of a provider's
// credential: JSON-safe, so an error body stays valid JSON.
const secretRemoved = "[provider credential removed by the gateway]"

// credentialSecrets lists a provider's credentials: its api_key and the
// values of its header lines that carry one (credentialHeader), each
// whole and without its auth scheme word. One under 8 bytes could match
// ordinary text and is left out.
func credentialSecrets(apiKey string, headers http.Header) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 8 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(apiKey)
	for name, vs := range headers {
		if credentialHeader(name) {
			for _, v := range vs {
				add(headerSecret(v))
				add(strings.TrimSpace(v)) // whole, when the part after a scheme is short
			}
		}
	}
	return out
}

// headerSecret is the credential in a header line's value: the value, or
// what follows its auth scheme ("Bearer", "Basic", "Token", in any case).
func headerSecret(v string) string {
	v = strings.TrimSpace(v)
	if scheme, rest, ok := strings.Cut(v, " "); ok {
		switch strings.ToLower(scheme) {
		case "bearer", "basic", "token":
			return strings.TrimSpace(rest)
		}
	}
	return v
}

// scrubSecrets returns body with every copy of the provider's credentials
// (p.secrets) replaced by secretRemoved. Some compatible servers and
// proxies echo the request's Authorization in an error (audit 24O: a 401
// that named the key whole reached the developer; review 26S: the same in
// a 200), which the real vendors mask; a provider key never reaches a
// client.
func (p *provider) scrubSecrets(body []byte) []byte {
	for _, secret := range p.secrets {
		if bytes.Contains(body, []byte(secret)) {
			body = bytes.ReplaceAll(body, []byte(secret), []byte(secretRemoved))
		}
	}
	return body
}

// scrubString is scrubSecrets for a string (a header value, a request id).
func (p *provider) scrubString(s string) string {
	for _, secret := range p.secrets {
		if len(s) >= len(secret) && strings.Contains(s, secret) {
			s = strings.ReplaceAll(s, secret, secretRemoved)
		}
	}
	return s
}

// scrubHeaderSecrets removes the provider's credentials from the values
// of the response headers h relays to a client, as scrubSecrets does from
// bodies: a compatible server's WWW-Authenticate, or a proxy's debug
// header, may echo the key (review 26S). A value is copied before it is
// changed: h's slices may be the provider response's own.
func (p *provider) scrubHeaderSecrets(h http.Header) {
	if len(p.secrets) == 0 {
		return
	}
	for k, vv := range h {
		for i, v := range vv {
			if w := p.scrubString(v); w != v {
				vv = slices.Clone(vv)
				vv[i] = w
				h[k] = vv
			}
		}
	}
}

// credentialHeader reports whether a header line's name says it carries
// a credential (Authorization, Azure's api-key, Helicone-Auth,
// cf-aig-authorization, x-portkey-api-key): the others (OpenAI-Project,
// anthropic-beta) are not secrets, and an error that names them (OpenAI's
// "Project `proj_…` does not have access") keeps them (review 24R2).
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "key", "token", "secret", "password", "cookie"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func (p *provider) closeIdle() { p.transport.CloseIdleConnections() }
