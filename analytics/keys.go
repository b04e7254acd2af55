package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// keyMeta is a gateway key's name and tags.
type keyMeta struct {
	name, user, team, workspace string
	known                       bool // found in gateway_keys
}

// keyInfo looks up the named keys in gateway_keys; a key missing there (a
// deleted key) gets the name recorded on its latest call.
func (h *Handler) keyInfo(ctx context.Context, ids []string) (map[string]keyMeta, error) {
	out := make(map[string]keyMeta, len(ids))
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		q := "SELECT id, name, user, team, workspace FROM gateway_keys WHERE id IN (?" +
			strings.Repeat(", ?", len(part)-1) + ")"
		rows, err := h.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("looking up gateway keys: %w", err)
		}
		for rows.Next() {
			var id string
			m := keyMeta{known: true}
			if err := rows.Scan(&id, &m.name, &m.user, &m.team, &m.workspace); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading gateway keys: %w", err)
			}
			out[id] = m
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reading gateway keys: %w", err)
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; ok || id == "" {
			continue
		}
		var name string
		err := h.db.QueryRowContext(ctx,
			"SELECT key_name FROM calls WHERE key_id = ? ORDER BY ts_us DESC LIMIT 1", id).Scan(&name)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("looking up the name of key %s: %w", id, err)
		}
		out[id] = keyMeta{name: name}
	}
	return out, nil
}
