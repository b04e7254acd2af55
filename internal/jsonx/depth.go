package jsonx

// TooDeep reports whether the JSON text s nests objects and arrays more
// than max levels deep. It reads s once, without recursion, so that a body
// of millions of brackets can be refused before a recursive parser (gjson's
// validator, encoding/json) runs out of stack on it. Brackets inside
// strings do not count; s need not be valid JSON.
func TooDeep(s string, max int) bool {
	if len(s) <= max {
		return false // each level takes a byte
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			end := StringEnd(s, i)
			if end < 0 {
				return false // unterminated: the validator refuses it
			}
			i = end - 1
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// HasKey reports whether an object anywhere in the JSON text s has a
// member named name, its escapes decoded ("cache\u005fcontrol" is
// cache_control). It reads s once, without recursion: its cost follows the
// length of s, however deep s nests.
func HasKey(s, name string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		end := StringEnd(s, i)
		if end < 0 {
			return false
		}
		j := end
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
			j++
		}
		if j < len(s) && s[j] == ':' && end-i-2 >= len(name) && Unquote(s[i:end]) == name {
			return true
		}
		i = end - 1
	}
	return false
}
