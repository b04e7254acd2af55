package apiversion

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestNegotiate(t *testing.T) {
	sunset := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	saved := Versions
	Versions = []Version{{Name: "0.9", Deprecated: true, Sunset: sunset}, {Name: "1.0"}}
	t.Cleanup(func() { Versions = saved })

	cases := []struct {
		name        string
		send        string
		wantOK      bool
		wantVersion string
		wantDeprec  bool
	}{
		{"absent resolves to latest", "", true, Latest, false},
		{"pinned latest echoed", "1.0", true, "1.0", false},
		{"pinned with spaces", " 1.0 ", true, "1.0", false},
		{"deprecated", "0.9", true, "0.9", true},
		{"unknown", "9.9", false, Latest, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/analytics/cost", nil)
			if tc.send != "" {
				r.Header.Set(Header, tc.send)
			}
			w := httptest.NewRecorder()
			v, ok := Negotiate(w, r)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if got := w.Header().Get(Header); got != tc.wantVersion {
				t.Errorf("response %s = %q, want %q", Header, got, tc.wantVersion)
			}
			if ok && v != tc.wantVersion {
				t.Errorf("version = %q, want %q", v, tc.wantVersion)
			}
			if got := w.Header().Get("Deprecation") == "true"; got != tc.wantDeprec {
				t.Errorf("Deprecation header present = %v, want %v", got, tc.wantDeprec)
			}
			if tc.wantDeprec {
				if got, want := w.Header().Get("Sunset"), "Mon, 01 Mar 2027 00:00:00 GMT"; got != want {
					t.Errorf("Sunset = %q, want %q", got, want)
				}
			} else if w.Header().Get("Sunset") != "" {
				t.Errorf("unexpected Sunset header %q", w.Header().Get("Sunset"))
			}
			if tc.wantOK {
				if w.Code != http.StatusOK || w.Body.Len() != 0 {
					t.Errorf("Negotiate wrote %d %q on success", w.Code, w.Body.String())
				}
				return
			}
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400", w.Code)
			}
			var body struct {
				Error struct{ Type, Message, Param string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("decode error body %q: %v", w.Body.String(), err)
			}
			want := `Metis-API-Version "9.9" is not supported; supported versions: 0.9, 1.0`
			if body.Error.Type != "unsupported_api_version" || body.Error.Param != Header || body.Error.Message != want {
				t.Errorf("error body = %+v", body.Error)
			}
		})
	}
}

func TestDefaultTable(t *testing.T) {
	if len(Versions) == 0 || Versions[len(Versions)-1].Name != Latest {
		t.Fatalf("Latest %q is not the last entry of Versions %+v", Latest, Versions)
	}
	r := httptest.NewRequest(http.MethodGet, "/health", nil)
	r.Header.Set(Header, "9.9")
	w := httptest.NewRecorder()
	if _, ok := Negotiate(w, r); ok {
		t.Fatal("9.9 accepted")
	}
	var body struct {
		Error struct{ Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if want := `Metis-API-Version "9.9" is not supported; supported versions: 1.0`; body.Error.Message != want {
		t.Errorf("message = %q, want %q", body.Error.Message, want)
	}
}
