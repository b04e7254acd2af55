package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// endpoint computes one answer; it returns the value to encode as JSON or an
// error (an *apiError for client mistakes, anything else is a 500).
type endpoint func(ctx context.Context, r *http.Request) (any, error)

// apiError is an error answered to the client as
// {"error":{"type","message","param"}} with its status.
type apiError struct {
	status  int
	typ     string
	message string
	param   string
}

func (e *apiError) Error() string { return e.message }

func badParam(param, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_parameter", message: message, param: param}
}

// run answers r with fn, after checking its query has only the params
// the endpoint reads.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, params []string, fn endpoint) {
	var v any
	err := checkParams(r, params)
	if err == nil {
		v, err = fn(r.Context(), r)
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			if ae.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metis"`)
			}
			writeError(w, ae.status, ae.typ, ae.message, ae.param)
			return
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
		h.log.Error("analytics query failed", zap.String("path", r.URL.Path),
			zap.String("query", r.URL.RawQuery), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal_error", "the analytics query failed", "")
		return
	}
	writeJSON(w, v)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func writeError(w http.ResponseWriter, status int, typ, message, param string) {
	writeStatusJSON(w, status, errorBody{Error: errorDetail{Type: typ, Message: message, Param: param}})
}

func writeJSON(w http.ResponseWriter, v any) { writeStatusJSON(w, http.StatusOK, v) }

func writeStatusJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: errorDetail{Type: "internal_error", Message: "encoding the answer failed"}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// usd is an amount of US dollars, encoded as a JSON number rounded to the
// nano-dollar so that summation noise (0.30000000000000004) does not show.
type usd float64

// MarshalJSON encodes u rounded to 9 decimals.
func (u usd) MarshalJSON() ([]byte, error) {
	v := math.Round(float64(u)*1e9) / 1e9
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, fmt.Errorf("encoding %v USD: not a finite number", float64(u))
	}
	return strconv.AppendFloat(nil, v, 'f', -1, 64), nil
}

// costOf is the cost of calls of which unpriced had no price: cost, or nil
// (JSON null) when every one of them was unpriced, since their cost is
// unknown, not $0. No calls cost $0.
func costOf(cost float64, calls, unpriced int64) *usd {
	if calls > 0 && unpriced >= calls {
		return nil
	}
	u := usd(cost)
	return &u
}

// value is the amount, 0 for an unknown (nil) cost: unknown costs sort with
// the $0 ones, as the SQL orderings by cost_usd do.
func (u *usd) value() usd {
	if u == nil {
		return 0
	}
	return *u
}
