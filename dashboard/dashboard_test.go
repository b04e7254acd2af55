package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndexServedNoCache(t *testing.T) {
	h := Handler("/dashboard/")
	for _, p := range []string{"/dashboard/", "/dashboard/index.html"} {
		r := get(t, h, "GET", p, nil)
		if r.StatusCode != 200 {
			t.Fatalf("%s: status %d", p, r.StatusCode)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", p, cc)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		b := body(t, r)
		if !strings.Contains(b, "<html") || !strings.Contains(b, "Spend by identity") {
			t.Errorf("%s: unexpected body %.200q", p, b)
		}
	}
}

func TestPrefixWithoutSlashRedirects(t *testing.T) {
	r := get(t, Handler("/dashboard"), "GET", "/dashboard?tab=cost", nil)
	if r.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("status %d", r.StatusCode)
	}
	if loc := r.Header.Get("Location"); loc != "/dashboard/?tab=cost" {
		t.Fatalf("Location %q", loc)
	}
}

func TestAssetETagAnd304(t *testing.T) {
	h := Handler("/dashboard/")
	for _, p := range []string{"/dashboard/app.js", "/dashboard/style.css", "/dashboard/vendor/uPlot.iife.min.js", "/dashboard/index.html"} {
		r := get(t, h, "GET", p, nil)
		if r.StatusCode != 200 {
			t.Fatalf("%s: status %d", p, r.StatusCode)
		}
		etag := r.Header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
			t.Fatalf("%s: ETag %q", p, etag)
		}
		if r.Header.Get("Last-Modified") != "" {
			t.Errorf("%s: unexpected Last-Modified", p)
		}
		if len(body(t, r)) == 0 {
			t.Errorf("%s: empty body", p)
		}
		for _, inm := range []string{etag, "W/" + etag, `"nope", ` + etag, "*"} {
			r2 := get(t, h, "GET", p, map[string]string{"If-None-Match": inm})
			if r2.StatusCode != http.StatusNotModified {
				t.Errorf("%s If-None-Match %s: status %d, want 304", p, inm, r2.StatusCode)
			}
			if r2.Header.Get("ETag") != etag {
				t.Errorf("%s: 304 without the ETag", p)
			}
			if b := body(t, r2); b != "" {
				t.Errorf("%s: 304 with a body", p)
			}
		}
		r3 := get(t, h, "GET", p, map[string]string{"If-None-Match": `"stale"`})
		if r3.StatusCode != 200 {
			t.Errorf("%s: stale ETag: status %d", p, r3.StatusCode)
		}
	}
	r := get(t, h, "GET", "/dashboard/app.js", nil)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
	r = get(t, h, "GET", "/dashboard/style.css", nil)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("style.css Content-Type %q", ct)
	}
}

func TestHead(t *testing.T) {
	r := get(t, Handler("/dashboard/"), "HEAD", "/dashboard/app.js", nil)
	if r.StatusCode != 200 || r.Header.Get("ETag") == "" {
		t.Fatalf("HEAD: status %d etag %q", r.StatusCode, r.Header.Get("ETag"))
	}
	if b := body(t, r); b != "" {
		t.Fatalf("HEAD with a body")
	}
}

func TestUnknown404(t *testing.T) {
	h := Handler("/dashboard/")
	for _, p := range []string{
		"/dashboard/nope.js", "/dashboard/vendor/", "/dashboard/js", "/dashboard/../go.mod",
		"/dashboard/dist/index.html", "/elsewhere/index.html", "/", "/analytics/cost",
	} {
		if r := get(t, h, "GET", p, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, r.StatusCode)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	r := get(t, Handler("/dashboard/"), "POST", "/dashboard/", nil)
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: status %d", r.StatusCode)
	}
}

func TestOtherPrefix(t *testing.T) {
	h := Handler("/ui/metis/")
	if r := get(t, h, "GET", "/ui/metis/", nil); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if r := get(t, h, "GET", "/dashboard/", nil); r.StatusCode != 404 {
		t.Fatalf("status %d", r.StatusCode)
	}
}
