// Package metis is an LLM gateway built as Caddy v2 modules: the `metis`
// app (providers, aliases, prices and the SQLite trace store), the
// metis_gateway handler (Anthropic- and OpenAI-shape endpoints with exact
// cost on every call), the metis_analytics handler (spend by developer,
// project, team and key, and the web dashboard) and the `caddy metis`
// command for gateway keys.
package metis

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(Gateway))
	caddy.RegisterModule(new(Analytics))

	httpcaddyfile.RegisterGlobalOption("metis", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("metis_gateway", parseGatewayDirective)
	httpcaddyfile.RegisterDirectiveOrder("metis_gateway", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterHandlerDirective("metis_analytics", parseAnalyticsDirective)
	httpcaddyfile.RegisterDirectiveOrder("metis_analytics", httpcaddyfile.Before, "reverse_proxy")

	registerCommand()
}
