package analytics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// An absolute range whose end is far in the future (a typo'd year, a
// script's "until further notice" 9999-12-31) makes /analytics/activity
// answer one empty day bucket for every day up to it: 182,000 buckets for
// five centuries (18 MB), 2.9 million and 285 MB for to=9999-12-31, built
// in memory by one GET. The series should be bounded (as /analytics/cost's
// groups are, at most 10,000) or the range refused with 400 naming to.
func TestReview28TActivitySeriesBounded(t *testing.T) {
	f := newFixture(t, 3, 50)
	const target = "/analytics/activity?from=2026-03-01&to=2526-03-01"
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	if w.Code == http.StatusBadRequest {
		return
	}
	if n := w.Body.Len(); n > 2<<20 {
		t.Errorf("GET %s: status %d, %d bytes of series (want at most 2 MiB, or 400 naming to)", target, w.Code, n)
	}
}

// The from and to an answer echoes are the instants it counted: a client
// exporting spend incrementally asks for window=1h (or from=last) and then
// from=<the answer's to>, and must count each call once. The window ends
// at now to the microsecond, but "to" is echoed cut to the millisecond, so
// a call in the last millisecond before now is counted by both answers.
func TestReview28TEchoedToIsTheInstantCounted(t *testing.T) {
	f := newFixture(t, 5, 1)
	cost := 1.0
	at := testNow.Add(-200 * time.Microsecond) // 13:37:21.123256
	c := store.Call{TurnID: "turn-paging", GatewayKeyID: "gk_PAGING", KeyName: "paging", Team: "paging",
		Provider: "anthropic", RequestedModel: "claude-haiku-4-5", Model: "claude-haiku-4-5", Status: 200, Attempts: 1,
		InputTokens: 10, OutputTokens: 10, UsageSource: "provider", CostUSD: &cost, Priced: true, InboundShape: "anthropic"}
	if !f.st.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: at, Payload: &c}) {
		t.Fatal("enqueue")
	}
	if err := f.st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var first, second struct {
		From, To string
		Calls    int64
	}
	f.get(t, "/analytics/cost", url.Values{"window": {"1h"}, "team": {"paging"}}, 200, &first)
	next := url.Values{"from": {first.To}, "to": {testNow.Add(time.Hour).Format(time.RFC3339Nano)}, "team": {"paging"}}
	f.get(t, "/analytics/cost", next, 200, &second)
	if first.Calls+second.Calls != 1 {
		t.Errorf("window=1h answered to=%s with %d calls; from=%s then answered %d: the call at %s is counted %d times, want once",
			first.To, first.Calls, first.To, second.Calls, at.Format(time.RFC3339Nano), first.Calls+second.Calls)
	}
}

// A chargeback in local time (dates are UTC midnights, so a Berlin month
// needs an offset) written as people write it in a shell,
// from=2026-03-01T00:00:00+01:00, reaches the server with the + decoded as
// a space (form encoding) and is refused as "bad from", the message
// echoing a value the user never typed and giving no hint. The offset is
// unambiguous ("T00:00:00 01:00" is no other time): accept it, or say
// that + must be sent as %2B.
func TestReview28TOffsetPlusInQuery(t *testing.T) {
	f := newFixture(t, 3, 1)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/analytics/cost?from=2026-03-01T00:00:00+01:00&to=2026-03-15", nil))
	if w.Code == 200 {
		var got struct{ From string }
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.From != "2026-02-28T23:00:00Z" {
			t.Errorf("from %q (%v), want 2026-02-28T23:00:00Z", got.From, err)
		}
		return
	}
	if !strings.Contains(w.Body.String(), "%2B") {
		t.Errorf("from with an offset after a literal +: %d %s; want it read as +01:00, or a message saying to send + as %%2B", w.Code, w.Body.String())
	}
}

// The 400 of a series too long names the bound that is far off: to past
// now, or else from (review 28R: from=1900-01-01 was blamed on to).
func TestActivityTooLongNamesTheFarBound(t *testing.T) {
	f := newFixture(t, 3, 1)
	for target, want := range map[string]string{
		"/analytics/activity?from=1900-01-01&to=2026-03-01": `"param":"from"`,
		"/analytics/activity?from=2026-03-01&to=2526-03-01": `"param":"to"`,
		"/analytics/activity?window=20000d":                 `"param":"window"`,
	} {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET %s: %d %s; want 400 with %s", target, w.Code, w.Body.String(), want)
		}
	}
}
