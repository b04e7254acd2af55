package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxToolNameLen is the longest tool name both providers accept.
const MaxToolNameLen = 64

// ValidToolName reports whether name fits both providers' rule
// ^[a-zA-Z0-9_-]{1,64}$.
func ValidToolName(name string) bool {
	if name == "" || len(name) > MaxToolNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// SafeToolName returns name unchanged when it is valid, else a valid name
// derived from it: characters outside [a-zA-Z0-9_-] become '_', the result
// is cut to 55 bytes and "_" plus the first 8 hex digits of the SHA-256 of
// the original name is appended. The result is deterministic, so the same
// name maps the same way in tools, tool_choice and past tool calls.
func SafeToolName(name string) string {
	if ValidToolName(name) {
		return name
	}
	const keep = MaxToolNameLen - 9
	b := make([]byte, 0, MaxToolNameLen)
	for i := 0; i < len(name) && len(b) < keep; i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	sum := sha256.Sum256([]byte(name))
	b = append(b, '_')
	b = hex.AppendEncode(b, sum[:4])
	return string(b)
}

// ToolNames remembers the tool names a request encoder had to change, and
// which tools it offered as JSON tools in place of custom ones, so the
// response side can give the client back its own names and call types.
// The zero value is ready to use; a nil *ToolNames maps every name to
// itself and marks none custom.
type ToolNames struct {
	toClient map[string]string
	custom   map[string]bool
}

// MarkCustom records that the upstream tool name belongs to a custom
// (free-text) tool, whose calls go back to the client as custom calls.
func (m *ToolNames) MarkCustom(upstream string) {
	if m == nil {
		return
	}
	if m.custom == nil {
		m.custom = make(map[string]bool)
	}
	m.custom[strings.Clone(upstream)] = true // may be the request body's memory
}

// IsCustom reports whether MarkCustom recorded the upstream tool name.
func (m *ToolNames) IsCustom(upstream string) bool {
	return m != nil && m.custom[upstream]
}

// Upstream returns the name to send upstream for the client's name and
// records the pair when they differ.
func (m *ToolNames) Upstream(name string) string {
	safe := SafeToolName(name)
	if safe != name && m != nil {
		if m.toClient == nil {
			m.toClient = make(map[string]string)
		}
		m.toClient[safe] = strings.Clone(name) // may be the request body's memory
	}
	return safe
}

// Client returns the client's name for an upstream tool name (the name
// itself when it was not changed).
func (m *ToolNames) Client(name string) string {
	if m != nil {
		if orig, ok := m.toClient[name]; ok {
			return orig
		}
	}
	return name
}

// Len is the number of renamed tools.
func (m *ToolNames) Len() int {
	if m == nil {
		return 0
	}
	return len(m.toClient)
}

// SafeToolCallID makes a tool call id acceptable to Anthropic
// (^[a-zA-Z0-9_-]+$) by replacing other characters with '_'; an empty id
// becomes "toolu_empty".
func SafeToolCallID(id string) string {
	if id == "" {
		return "toolu_empty"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b := []byte(id)
			for j := i; j < len(b); j++ {
				c := b[j]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return id
}

// HashedUserID stands in for a user id a provider will not take as it is
// (too long, or an e-mail address or phone number where an opaque id is
// asked for): its hex SHA-256, 64 characters, which still tells the
// client's users apart.
func HashedUserID(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
}
