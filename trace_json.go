package metis

import (
	"strconv"

	"github.com/metisgateway/metis/internal/jsonx"
)

// AppendJSON appends the payload as encoding/json would marshal it, without
// reflection (the trace writer encodes three payloads per call).
func (p *routeDecided) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"turn_id":`...)
	dst = jsonx.AppendString(dst, p.TurnID)
	dst = append(dst, `,"gateway_key_id":`...)
	dst = jsonx.AppendString(dst, p.GatewayKeyID)
	dst = append(dst, `,"key_name":`...)
	dst = jsonx.AppendString(dst, p.KeyName)
	dst = append(dst, `,"user":`...)
	dst = jsonx.AppendString(dst, p.User)
	dst = append(dst, `,"team":`...)
	dst = jsonx.AppendString(dst, p.Team)
	dst = append(dst, `,"workspace":`...)
	dst = jsonx.AppendString(dst, p.Workspace)
	if p.SessionID != "" {
		dst = append(dst, `,"session_id":`...)
		dst = jsonx.AppendString(dst, p.SessionID)
	}
	dst = append(dst, `,"inbound_shape":`...)
	dst = jsonx.AppendString(dst, p.InboundShape)
	dst = append(dst, `,"endpoint":`...)
	dst = jsonx.AppendString(dst, p.Endpoint)
	dst = append(dst, `,"requested_model":`...)
	dst = jsonx.AppendString(dst, p.RequestedModel)
	dst = append(dst, `,"provider":`...)
	dst = jsonx.AppendString(dst, p.Provider)
	dst = append(dst, `,"model":`...)
	dst = jsonx.AppendString(dst, p.Model)
	dst = append(dst, `,"route_slot":`...)
	dst = jsonx.AppendString(dst, p.RouteSlot)
	dst = append(dst, `,"stream":`...)
	dst = jsonx.AppendBool(dst, p.Stream)
	dst = append(dst, `,"cross_shape":`...)
	dst = jsonx.AppendBool(dst, p.CrossShape)
	return append(dst, '}'), nil
}

// AppendJSON appends the payload as encoding/json would marshal it.
func (p *turnCompleted) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"turn_id":`...)
	dst = jsonx.AppendString(dst, p.TurnID)
	dst = append(dst, `,"gateway_key_id":`...)
	dst = jsonx.AppendString(dst, p.GatewayKeyID)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(p.Status), 10)
	dst = append(dst, `,"error_class":`...)
	if p.ErrorClass == nil {
		dst = append(dst, "null"...)
	} else {
		dst = jsonx.AppendString(dst, *p.ErrorClass)
	}
	dst = append(dst, `,"cost_usd":`...)
	if p.CostUSD == nil {
		dst = append(dst, "null"...)
	} else {
		var err error
		if dst, err = jsonx.AppendFloat(dst, *p.CostUSD); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `,"priced":`...)
	dst = jsonx.AppendBool(dst, p.Priced)
	dst = append(dst, `,"latency_ms":`...)
	dst = strconv.AppendInt(dst, p.LatencyMS, 10)
	dst = append(dst, `,"calls":`...)
	dst = strconv.AppendInt(dst, int64(p.Calls), 10)
	return append(dst, '}'), nil
}
