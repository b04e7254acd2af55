package metis

import (
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

// parseGlobalOption parses the `metis { … }` global option:
//
//	metis {
//		db ~/.metis/metis.db
//		provider NAME [anthropic|openai] {
//			api_key {env.ANTHROPIC_API_KEY}
//			base_url https://api.anthropic.com
//			timeout 10m
//			max_retries 2
//			max_retry_wait 30s
//			auth x-api-key|bearer
//			stream_usage on|off                         # openai type
//			max_tokens_field max_completion_tokens|max_tokens
//			system_messages in_place|first
//			prompt_cache auto|off                       # anthropic type
//			header NAME VALUE                           # repeatable
//			ca_file /etc/metis/internal-ca.pem
//		}
//		alias haiku anthropic:claude-haiku-4-5
//		pricing /etc/metis/prices.json
//		default_model anthropic:claude-haiku-4-5
//		budget_failure closed
//		writer {
//			queue_size 65536
//			batch_size 2048
//			flush_interval 20ms
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // the option name
	if existing != nil {
		return nil, d.Err("the metis global option may only be given once")
	}
	app := new(App)
	if d.NextArg() {
		return nil, d.Errf("metis takes no arguments, got %q", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		switch opt {
		case "db", "pricing", "default_model", "budget_failure", "writer":
			// The last would win silently.
			if seen[opt] {
				return nil, d.Errf("%s given twice", opt)
			}
			seen[opt] = true
		}
		switch opt {
		case "db", "pricing", "default_model":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.Errf("%s takes exactly one argument", opt)
			}
			switch opt {
			case "db":
				app.DB = v
			case "pricing":
				app.Pricing = v
			default:
				app.DefaultModel = v
			}
		case "provider":
			p, err := parseProvider(d)
			if err != nil {
				return nil, err
			}
			for _, q := range app.Providers {
				if q.Name == p.Name {
					return nil, d.Errf("provider %q given twice", p.Name)
				}
			}
			app.Providers = append(app.Providers, p)
		case "alias":
			var name, target string
			if !d.AllArgs(&name, &target) {
				return nil, d.Errf("alias takes a name and a target model, e.g. `alias haiku anthropic:claude-haiku-4-5`")
			}
			if app.Aliases == nil {
				app.Aliases = map[string]string{}
			}
			if _, dup := app.Aliases[name]; dup {
				return nil, d.Errf("alias %q given twice", name)
			}
			app.Aliases[name] = target
		case "budget_failure":
			var v string
			if !d.AllArgs(&v) || (v != "open" && v != "closed") {
				return nil, d.Errf("budget_failure takes open or closed")
			}
			app.BudgetFailure = v
		case "writer":
			w, err := parseWriter(d)
			if err != nil {
				return nil, err
			}
			app.Writer = w
		default:
			return nil, d.Errf("unrecognized metis option %q", opt)
		}
	}
	return httpcaddyfile.App{Name: "metis", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseProvider(d *caddyfile.Dispenser) (*ProviderConfig, error) {
	p := new(ProviderConfig)
	args := d.RemainingArgs()
	switch len(args) {
	case 1:
		p.Name = args[0]
	case 2:
		p.Name, p.Type = args[0], args[1]
		if p.Type != shapeAnthropic && p.Type != shapeOpenAI {
			return nil, d.Errf("provider %q: type must be anthropic or openai, got %q", p.Name, p.Type)
		}
	default:
		return nil, d.Errf("provider takes a name and an optional type (anthropic or openai)")
	}
	if p.Type == "" && p.Name != shapeAnthropic && p.Name != shapeOpenAI {
		return nil, d.Errf("provider %q needs a type: `provider %s anthropic` or `provider %s openai`", p.Name, p.Name, p.Name)
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if opt == "header" {
			var name, value string
			if !d.AllArgs(&name, &value) {
				return nil, d.Errf("provider %q: header takes a name and a value", p.Name)
			}
			canon := http.CanonicalHeaderKey(name)
			if seen["header "+canon] {
				return nil, d.Errf("provider %q: header %s given twice", p.Name, canon)
			}
			seen["header "+canon] = true
			if p.Headers == nil {
				p.Headers = map[string]string{}
			}
			p.Headers[name] = value
			continue
		}
		if seen[opt] {
			return nil, d.Errf("provider %q: %s given twice", p.Name, opt)
		}
		seen[opt] = true
		var v string
		if !d.AllArgs(&v) {
			return nil, d.Errf("provider %q: %s takes exactly one argument", p.Name, opt)
		}
		switch opt {
		case "api_key":
			p.APIKey = v
		case "base_url":
			p.BaseURL = v
		case "timeout", "max_retry_wait":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("provider %q: bad %s %q: want a duration such as 30s", p.Name, opt, v)
			}
			if opt == "timeout" {
				p.Timeout = caddy.Duration(dur)
			} else {
				p.MaxRetryWait = caddy.Duration(dur)
			}
		case "auth":
			p.Auth = v
		case "stream_usage":
			p.StreamUsage = v
		case "max_tokens_field":
			p.MaxTokensField = v
		case "system_messages":
			p.SystemMessages = v
		case "prompt_cache":
			p.PromptCache = v
		case "ca_file":
			p.CAFile = v
		case "max_retries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, d.Errf("provider %q: bad max_retries %q: want a whole number ≥ 0", p.Name, v)
			}
			p.MaxRetries = &n
		default:
			return nil, d.Errf("provider %q: unrecognized option %q", p.Name, opt)
		}
	}
	typ := p.Type
	if typ == "" {
		typ = p.Name
	}
	if _, _, err := providerOptions(p, typ); err != nil {
		return nil, d.Err(err.Error())
	}
	return p, nil
}

func parseWriter(d *caddyfile.Dispenser) (*WriterConfig, error) {
	w := new(WriterConfig)
	if d.NextArg() {
		return nil, d.Errf("writer takes a block, not %q", d.Val())
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return nil, d.Errf("writer: %s given twice", opt)
		}
		seen[opt] = true
		var v string
		if !d.AllArgs(&v) {
			return nil, d.Errf("writer: %s takes exactly one argument", opt)
		}
		switch opt {
		case "queue_size", "batch_size":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, d.Errf("writer: bad %s %q: want a positive whole number", opt, v)
			}
			if opt == "queue_size" {
				w.QueueSize = n
			} else {
				w.BatchSize = n
			}
		case "flush_interval":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 || dur > time.Minute {
				return nil, d.Errf("writer: bad flush_interval %q: want a duration up to 1m", v)
			}
			w.FlushInterval = caddy.Duration(dur)
		default:
			return nil, d.Errf("writer: unrecognized option %q", opt)
		}
	}
	return w, nil
}

// UnmarshalCaddyfile sets up the gateway handler from Caddyfile tokens:
//
//	metis_gateway {
//		max_body 32MiB
//	}
func (g *Gateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("metis_gateway takes no arguments, got %q", d.Val())
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "max_body":
			if g.MaxBodySize != 0 {
				return d.Errf("max_body given twice")
			}
			var v string
			if !d.AllArgs(&v) {
				return d.Errf("max_body takes one size, e.g. 32MiB")
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 {
				return d.Errf("bad max_body %q: want a size such as 32MiB", v)
			}
			g.MaxBodySize = int64(n)
		default:
			return d.Errf("unrecognized metis_gateway option %q", opt)
		}
	}
	return nil
}

// UnmarshalCaddyfile sets up the analytics handler from Caddyfile tokens:
//
//	metis_analytics {
//		dashboard off
//	}
func (h *Analytics) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.Errf("metis_analytics takes no arguments, got %q", d.Val())
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "dashboard":
			var v string
			if !d.AllArgs(&v) || (v != "on" && v != "off") {
				return d.Errf("dashboard takes on or off")
			}
			off := v == "off"
			h.DisableDashboard = off
		default:
			return d.Errf("unrecognized metis_analytics option %q", opt)
		}
	}
	return nil
}

func parseGatewayDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(Gateway)
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return g, err
}

func parseAnalyticsDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(Analytics)
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return a, err
}

var (
	_ caddyfile.Unmarshaler = (*Gateway)(nil)
	_ caddyfile.Unmarshaler = (*Analytics)(nil)
)
