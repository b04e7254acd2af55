package metis

import (
	"strings"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
	"github.com/tidwall/gjson"
)

// Base64 payloads (images, PDFs, audio) are not text: a quarter of their
// bytes would count a 5 MB screenshot as 1.3 million tokens. Only the slots
// the two APIs carry binary content in are read as such: a "data" value
// (Anthropic's base64 sources, OpenAI's input_audio) of at least base64Min
// bytes of base64, and a base64 data: URL as an image_url, url or
// file_data value. Base64 anywhere else (a binary file a tool read, in a
// tool_result) is text to the provider, and is counted as text.
const base64Min = 1024

// estimatePromptTokens is the gateway's estimate of a request body's input
// tokens when the provider reported none: a quarter of its bytes, with each
// binary payload counted as ir.ImageTokenEstimate (a PDF as
// ir.DocumentTokenEstimate) and a text/* data URL at its decoded size.
func estimatePromptTokens(body []byte) int64 {
	s := jsonx.View(body)
	text := int64(len(s))
	var fixed int64
	key := "" // the member name a string value belongs to
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			break
		}
		start := i + j
		end := jsonx.StringEnd(s, start)
		if end < 0 {
			break
		}
		lit := s[start+1 : end-1]
		if isValue(s, start) {
			tokens, binary := binaryPayload(key, lit)
			if tokens == 0 {
				if tokens = fetchedByURL(s, start, key, lit); tokens != 0 {
					binary = int64(len(lit))
				}
			}
			text -= binary
			fixed += tokens
			key = ""
		} else {
			key = lit
		}
		i = end
	}
	return (text+3)/4 + fixed
}

// isValue reports whether the string starting at s[start] follows a colon:
// a member's value rather than its name or an array element.
func isValue(s string, start int) bool {
	for k := start - 1; k >= 0; k-- {
		switch s[k] {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// binaryPayload reads the value lit of member key: when it is binary
// content, it returns the tokens to count for it and how many of its bytes
// are not to be counted as text (0 when it is text).
func binaryPayload(key, lit string) (tokens, binary int64) {
	switch key {
	case "data":
		if len(lit) >= base64Min && isBase64(lit) {
			if strings.HasPrefix(lit, "JVBER") { // %PDF-
				return ir.DocumentTokenEstimate, int64(len(lit))
			}
			return ir.ImageTokenEstimate, int64(len(lit))
		}
	case "url", "image_url", "file_data":
		rest, ok := strings.CutPrefix(lit, "data:")
		if !ok {
			return 0, 0
		}
		mediaType, b64, ok := strings.Cut(rest, ";base64,")
		if !ok || len(mediaType) > 100 || !isBase64(b64) {
			return 0, 0
		}
		switch {
		case strings.HasPrefix(mediaType, "text/"):
			// Read as text: its decoded bytes, not its base64, count.
			return 0, int64(len(b64)) - int64(len(b64))*3/4
		case mediaType == "application/pdf":
			return ir.DocumentTokenEstimate, int64(len(lit))
		default:
			return ir.ImageTokenEstimate, int64(len(lit))
		}
	}
	return 0, 0
}

// fetchedByURL returns the tokens to count for the string value lit,
// starting at s[start] as the value of member key, when it is content the
// provider fetches by an http(s) URL and bills as an image or a document
// (0 otherwise): a Responses input_image's "image_url", the "url" of a
// Chat Completions image_url object, or the "url" of an Anthropic image
// or document block's {"type":"url"} source. Its URL's few bytes would
// not count for it (review 23R2: 57 tokens estimated for an image and a
// short text).
func fetchedByURL(s string, start int, key, lit string) int64 {
	if !strings.HasPrefix(lit, "https://") && !strings.HasPrefix(lit, "http://") {
		return 0
	}
	switch key {
	case "image_url":
		return ir.ImageTokenEstimate
	case "url":
		// The enclosing object's member name: back to its '{', then the
		// name before the colon.
		open := strings.LastIndexAny(s[:start], "{}[")
		if open < 0 || s[open] != '{' {
			return 0
		}
		before := strings.TrimRight(s[:open], " \t\n\r")
		before, ok := strings.CutSuffix(before, ":")
		before = strings.TrimRight(before, " \t\n\r")
		switch {
		case !ok:
		case strings.HasSuffix(before, `"image_url"`):
			return ir.ImageTokenEstimate
		case strings.HasSuffix(before, `"source"`) && gjson.Get(s[open:], "type").Str == "url":
			if block := enclosingObject(s, len(before)-len(`"source"`)); block >= 0 &&
				gjson.Get(s[block:], "type").Str == "document" {
				return ir.DocumentTokenEstimate
			}
			return ir.ImageTokenEstimate
		}
	}
	return 0
}

// enclosingObject returns the offset of the '{' that opens the object
// holding s[at] (a member name's opening quote), or -1. It reads back
// over whole strings and nested values.
func enclosingObject(s string, at int) int {
	depth := 0
	for k := at - 1; k >= 0; k-- {
		switch s[k] {
		case '"':
			// Back to the string's opening quote: the previous quote
			// not escaped by an odd run of backslashes.
			for k--; k >= 0; k-- {
				if s[k] != '"' {
					continue
				}
				n := 0
				for b := k - 1; b >= 0 && s[b] == '\\'; b-- {
					n++
				}
				if n%2 == 0 {
					break
				}
			}
		case '}', ']':
			depth++
		case '[', '{':
			if depth == 0 {
				if s[k] == '{' {
					return k
				}
				return -1
			}
			depth--
		}
	}
	return -1
}

// isBase64 reports whether s holds only base64 (standard or URL-safe)
// characters; "\/", JSON's escaped slash, counts as a slash.
func isBase64(s string) bool {
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '+', c == '/', c == '=', c == '-', c == '_':
		case c == '\\' && k+1 < len(s) && s[k+1] == '/':
			k++
		default:
			return false
		}
	}
	return true
}

// estimateAnswerTokens is the gateway's estimate of the output tokens of a
// complete answer body (in the provider's format) that reported no usage:
// ir.EstimateTokens of the bytes the model wrote (text, refusals,
// reasoning, tool-call arguments), as a stream of the same answer is
// estimated, not of the JSON around them. A JSON array is a stream sent
// as one body, its chunks counted alike (fake-llm-server's FastAPI
// encodes llama.cpp's chunk generator so; review 29U: 714 tokens for 22
// bytes of text). A body that is not JSON counts whole.
func estimateAnswerTokens(format streamFormat, body []byte) int64 {
	root := gjson.Parse(jsonx.View(body))
	switch {
	case root.IsObject():
		return ir.EstimateTokens(answerBytes(format, root))
	case root.IsArray():
		var n int64
		root.ForEach(func(_, el gjson.Result) bool {
			n += answerBytes(format, el)
			return true
		})
		return ir.EstimateTokens(n)
	}
	return ir.EstimateTokens(int64(len(body)))
}

// answerBytes counts the bytes the model wrote in one answer object, or
// one chunk or event of a stream, in the provider's format.
func answerBytes(format streamFormat, root gjson.Result) int64 {
	var n int64
	str := func(v gjson.Result) {
		if v.Type == gjson.String {
			n += int64(len(v.Str))
		}
	}
	switch format {
	case formatMessages:
		root.Get("content").ForEach(func(_, b gjson.Result) bool {
			str(b.Get("text"))
			str(b.Get("thinking"))
			if in := b.Get("input"); in.Exists() {
				n += int64(len(in.Raw))
			}
			return true
		})
		d := root.Get("delta") // a content_block_delta event
		str(d.Get("text"))
		str(d.Get("thinking"))
		str(d.Get("partial_json"))
	case formatResponses:
		root.Get("output").ForEach(func(_, item gjson.Result) bool {
			item.Get("content").ForEach(func(_, c gjson.Result) bool {
				str(c.Get("text"))
				str(c.Get("refusal"))
				return true
			})
			item.Get("summary").ForEach(func(_, c gjson.Result) bool {
				str(c.Get("text"))
				return true
			})
			str(item.Get("arguments"))
			str(item.Get("input"))
			return true
		})
		str(root.Get("delta")) // a *.delta event
	default:
		root.Get("choices").ForEach(func(_, ch gjson.Result) bool {
			for _, m := range [...]gjson.Result{ch.Get("message"), ch.Get("delta")} {
				if c := m.Get("content"); c.IsArray() {
					c.ForEach(func(_, p gjson.Result) bool {
						str(p.Get("text"))
						return true
					})
				} else {
					str(c)
				}
				str(m.Get("refusal"))
				str(m.Get("reasoning_content"))
				str(m.Get("reasoning"))
				m.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
					str(tc.Get("function.arguments"))
					return true
				})
			}
			return true
		})
	}
	return n
}
