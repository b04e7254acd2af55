// Package dashboard embeds the Metis web dashboard: static HTML, CSS and
// plain ES modules (no build step) plus a vendored copy of uPlot. The page
// reads only the /analytics/* JSON endpoints of the same origin.
//
// The package is deliberately free of Caddy: metis_analytics mounts
// Handler under its prefix.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Content-Security-Policy for every response: same-origin only, no inline
// script. Inline style attributes are allowed because uPlot positions its
// cursor and legend through element styles.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body  []byte
	etag  string
	ctype string
}

var assets = mustLoad()

func mustLoad() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // don't depend on the host's mime.types
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		case ".json":
			ct = "application/json"
		}
		if ct == "" || strings.HasSuffix(p, "LICENSE") || strings.HasSuffix(p, "VERSION") {
			ct = "text/plain; charset=utf-8"
		}
		m[strings.TrimPrefix(p, "dist/")] = &asset{
			body:  b,
			etag:  `"` + hex.EncodeToString(sum[:12]) + `"`,
			ctype: ct,
		}
		return nil
	})
	if err != nil {
		panic("dashboard: reading embedded files: " + err.Error())
	}
	if m["index.html"] == nil {
		panic("dashboard: dist/index.html is not embedded")
	}
	return m
}

// Handler serves the embedded dashboard under prefix (e.g. "/dashboard/"):
// index.html with Cache-Control: no-cache, assets with an ETag (embed.FS has
// no modtime); unknown paths 404.
//
// Every file carries a strong ETag (a content hash) and answers
// If-None-Match with 304. Assets are also sent with no-cache: their names
// carry no hash, so browsers must revalidate (a cheap 304) to pick up a new
// build. The prefix without its trailing slash redirects to the prefix.
func Handler(prefix string) http.Handler {
	if !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	bare := strings.TrimSuffix(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if bare != "" && p == bare {
			target := prefix
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		if !strings.HasPrefix(p, prefix) {
			http.NotFound(w, r)
			return
		}
		name := strings.TrimPrefix(p, prefix)
		if name == "" {
			name = "index.html"
		}
		a := assets[name]
		if a == nil || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if name == "index.html" {
			h.Set("Content-Security-Policy", csp)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
		}
		if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", a.ctype)
		// ServeContent handles HEAD, Range and Content-Length; a zero
		// modtime keeps it from sending Last-Modified.
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// etagMatch implements the weak comparison of If-None-Match (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
