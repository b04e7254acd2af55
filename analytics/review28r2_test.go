package analytics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// README: the 400 of a series too long names "the far-off bound of from
// and to". A dashboard sending to as the end of today (a few hours past
// now) with a mistyped from year is blamed on to: b86092f names to
// whenever to is after now, however near.
func TestReview28R2ActivityTooLongBlamesFarFromNotNearTo(t *testing.T) {
	f := newFixture(t, 3, 1)
	// testNow is 2026-03-15T13:37Z; to is that day's end.
	target := "/analytics/activity?from=1900-01-01&to=2026-03-16"
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"param":"from"`) {
		t.Errorf("GET %s: %d %s; want 400 naming from (1900 is the far-off bound; to is 10 h ahead)", target, w.Code, w.Body.String())
	}
}
