package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// adminPrefix is where the control endpoints live, for drivers that are not
// Go tests (the fakeupstream command, browser tests). Requests under it are
// not recorded.
const adminPrefix = "/_fake/"

// AdminReply is the JSON form of a Reply for POST /_fake/enqueue. Fixture
// (with Interaction) builds the reply with FromFixture; the other fields
// then override it when set.
type AdminReply struct {
	Fixture     string      `json:"fixture,omitempty"`
	Interaction int         `json:"interaction,omitempty"`
	Status      int         `json:"status,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Body        string      `json:"body,omitempty"`
	Events      []string    `json:"events,omitempty"`
	GapMS       int         `json:"gap_ms,omitempty"`
	DieAfter    int         `json:"die_after,omitempty"`
	StallAfter  int         `json:"stall_after,omitempty"`
	DelayMS     int         `json:"delay_ms,omitempty"`
}

// serveAdmin answers the control endpoints:
//
//	GET  /_fake/requests                 every recorded request, as JSON
//	POST /_fake/enqueue?path=/v1/messages  queue an AdminReply (or a list)
//	POST /_fake/reset                    drop queues and recorded requests
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == adminPrefix+"requests" && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(s.Requests())
	case r.URL.Path == adminPrefix+"reset" && r.Method == http.MethodPost:
		s.Reset()
		fmt.Fprint(w, `{"ok":true}`)
	case r.URL.Path == adminPrefix+"enqueue" && r.Method == http.MethodPost:
		path := r.URL.Query().Get("path")
		if path == "" {
			http.Error(w, `{"error":"path query parameter required"}`, http.StatusBadRequest)
			return
		}
		var list []AdminReply
		if err := json.Unmarshal(body, &list); err != nil {
			var one AdminReply
			if err := json.Unmarshal(body, &one); err != nil {
				http.Error(w, fmt.Sprintf(`{"error":%s}`, jstr(err.Error())), http.StatusBadRequest)
				return
			}
			list = []AdminReply{one}
		}
		for _, a := range list {
			rp, err := a.reply()
			if err != nil {
				http.Error(w, fmt.Sprintf(`{"error":%s}`, jstr(err.Error())), http.StatusBadRequest)
				return
			}
			s.Enqueue(path, rp)
		}
		fmt.Fprintf(w, `{"ok":true,"pending":%d}`, s.Pending(path))
	default:
		http.Error(w, `{"error":"unknown control endpoint"}`, http.StatusNotFound)
	}
}

func (a AdminReply) reply() (rp Reply, err error) {
	if a.Fixture != "" {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%v", p)
			}
		}()
		rp = FromFixture(a.Fixture, a.Interaction)
	}
	if a.Status != 0 {
		rp.Status = a.Status
	}
	if a.Header != nil {
		rp.Header = a.Header
	}
	if a.Body != "" {
		rp.Body, rp.Events = a.Body, nil
	}
	if len(a.Events) > 0 {
		rp.Events = a.Events
	}
	rp.Gap = time.Duration(a.GapMS) * time.Millisecond
	rp.Delay = time.Duration(a.DelayMS) * time.Millisecond
	rp.DieAfter, rp.StallAfter = a.DieAfter, a.StallAfter
	return rp, nil
}
