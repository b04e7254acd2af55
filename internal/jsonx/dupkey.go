package jsonx

import "strings"

// DuplicateKey returns the first member name that occurs twice in one
// object of s, at any depth, and whether there is one. s must be valid
// JSON (gjson.Valid). Names are compared as decoded ("a" and "\u0061" are
// the same name), as the parsers that keep the last of duplicates do.
// When skip is not nil, the value of each top-level member whose name it
// accepts is not looked into.
//
// A gateway that reads the first "model" of a body and forwards it to a
// provider that reads the last would check one model and run another;
// refusing such bodies keeps both readings the same.
func DuplicateKey(s string, skip func(name string) bool) (string, bool) {
	type object struct {
		start int                 // this object's first name in names
		seen  map[string]struct{} // its names, once it has many
	}
	const linearNames = 16 // compare one by one up to this many names
	var (
		objBuf  [8]object
		kindBuf [16]bool
		nameBuf [32]string
		objects = objBuf[:0]  // open objects, innermost last
		isObj   = kindBuf[:0] // per open container: object or array
		names   = nameBuf[:0] // the names of the open objects
		wantKey bool          // the next string is a member name
		inSkip  bool          // inside the value of a skipped top-level member
		// One map per object depth, cleared for the next object at that
		// depth: a body of many large objects allocates a few maps.
		maps []map[string]struct{}
	)
	for i := 0; i < len(s); i++ {
		if !structural[s[i]] {
			continue // numbers, literals, whitespace, ':'
		}
		switch s[i] {
		case '"':
			end := StringEnd(s, i)
			if end < 0 {
				return "", false // not valid JSON: nothing to report
			}
			if wantKey && inSkip && len(isObj) > 1 {
				wantKey = false // a name inside a skipped value
			} else if wantKey {
				wantKey = false
				name := Unquote(s[i:end])
				if len(isObj) == 1 {
					inSkip = skip != nil && skip(name)
				}
				o := &objects[len(objects)-1]
				if o.seen != nil {
					if _, dup := o.seen[name]; dup {
						return name, true
					}
					o.seen[name] = struct{}{}
				} else {
					for _, n := range names[o.start:] {
						if n == name {
							return name, true
						}
					}
					if len(names)-o.start >= linearNames {
						d := len(objects) - 1
						for len(maps) <= d {
							maps = append(maps, nil)
						}
						if maps[d] == nil {
							maps[d] = make(map[string]struct{}, 2*linearNames)
						} else {
							clear(maps[d])
						}
						o.seen = maps[d]
						for _, n := range names[o.start:] {
							o.seen[n] = struct{}{}
						}
						o.seen[name] = struct{}{}
					}
				}
				names = append(names, name)
			}
			i = end - 1
		case '{':
			objects = append(objects, object{start: len(names)})
			isObj = append(isObj, true)
			wantKey = true
		case '[':
			isObj = append(isObj, false)
			wantKey = false
		case '}', ']':
			if len(isObj) == 0 {
				return "", false
			}
			if isObj[len(isObj)-1] {
				o := objects[len(objects)-1]
				names = names[:o.start]
				objects = objects[:len(objects)-1]
			}
			isObj = isObj[:len(isObj)-1]
			wantKey = false
		case ',':
			wantKey = len(isObj) > 0 && isObj[len(isObj)-1]
		}
	}
	return "", false
}

// structural marks the bytes DuplicateKey acts on.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true, ',': true}

// StringEnd returns the index just past the JSON string starting at
// s[i] == '"', or -1 if it is unterminated. It jumps from quote to quote, a
// quote preceded by an odd run of backslashes being escaped.
func StringEnd(s string, i int) int {
	for j := i + 1; ; {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		bs := 0
		for p := q - 1; p > i && s[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}
