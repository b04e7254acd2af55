// Package apiversion holds the version table of Metis-owned HTTP endpoints
// (the gateway's /healthz, the analytics API, the dashboard) and negotiates
// the Metis-API-Version header on each request.
package apiversion

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Header is the request and response header carrying the API version.
const Header = "Metis-API-Version"

// Latest is the version an unpinned request resolves to.
const Latest = "1.0"

// Version is one entry of the version table. A deprecated version is still
// served, with Deprecation and Sunset headers announcing its end.
type Version struct {
	// Name is the version string clients send, e.g. "1.0".
	Name string
	// Deprecated marks a version that is served with Deprecation: true.
	Deprecated bool
	// Sunset is the date after which a deprecated version stops being served.
	Sunset time.Time
}

// Versions is the table of supported versions, oldest first.
var Versions = []Version{{Name: "1.0"}}

// Negotiate reads the request's Metis-API-Version (absent = Latest) and sets
// the response header to the resolved version. A deprecated version also gets
// Deprecation: true and Sunset: <HTTP date>. An unknown version is answered
// with a 400 JSON error naming the supported versions, and ok is false: the
// caller must then write nothing more.
func Negotiate(w http.ResponseWriter, r *http.Request) (version string, ok bool) {
	asked := strings.TrimSpace(r.Header.Get(Header))
	if asked == "" {
		asked = Latest
	}
	for _, v := range Versions {
		if v.Name != asked {
			continue
		}
		h := w.Header()
		h.Set(Header, v.Name)
		if v.Deprecated {
			h.Set("Deprecation", "true")
			if !v.Sunset.IsZero() {
				h.Set("Sunset", v.Sunset.UTC().Format(http.TimeFormat))
			}
		}
		return v.Name, true
	}
	w.Header().Set(Header, Latest)
	writeUnsupported(w, asked)
	return "", false
}

// Supported lists the names of the supported versions, comma separated.
func Supported() string {
	names := make([]string, len(Versions))
	for i, v := range Versions {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Param   string `json:"param"`
}

func writeUnsupported(w http.ResponseWriter, asked string) {
	body, _ := json.Marshal(errorBody{Error: errorDetail{
		Type:    "unsupported_api_version",
		Message: fmt.Sprintf("%s %q is not supported; supported versions: %s", Header, asked, Supported()),
		Param:   Header,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(append(body, '\n'))
}
