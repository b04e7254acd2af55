package metis

import (
	"strings"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

// Base64 payloads (images, PDFs, audio) are not text: a quarter of their
// bytes would count a 5 MB screenshot as 1.3 million tokens. A JSON string
// of at least base64Min bytes made only of base64 characters, with or
// without a data: URL prefix, is counted at a flat rate instead, the same
// as the translator's ir.Request.EstimateInputTokens.
const base64Min = 1024

// estimatePromptTokens is the gateway's estimate of a request body's input
// tokens when the provider reported none: a quarter of its bytes, with each
// base64 payload counted as ir.ImageTokenEstimate (a PDF as
// ir.DocumentTokenEstimate) instead of its bytes.
func estimatePromptTokens(body []byte) int64 {
	s := jsonx.View(body)
	text := int64(len(s))
	var fixed int64
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
		if lit := s[start+1 : end-1]; len(lit) >= base64Min {
			if payload, doc := base64Payload(lit); payload {
				text -= int64(len(lit))
				if doc {
					fixed += ir.DocumentTokenEstimate
				} else {
					fixed += ir.ImageTokenEstimate
				}
			}
		}
		i = end
	}
	return (text+3)/4 + fixed
}

// base64Payload reports whether the string literal lit (without quotes) is
// base64 data, possibly after a data: URL prefix, and whether it is a PDF.
func base64Payload(lit string) (payload, pdf bool) {
	data := lit
	if rest, ok := strings.CutPrefix(lit, "data:"); ok {
		mediaType, b64, ok := strings.Cut(rest, ";base64,")
		if !ok || len(mediaType) > 100 {
			return false, false
		}
		data, pdf = b64, mediaType == "application/pdf"
	}
	for k := 0; k < len(data); k++ {
		c := data[k]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '=' || c == '-' || c == '_') {
			if c == '\\' && k+1 < len(data) && data[k+1] == '/' { // "\/" is a slash
				k++
				continue
			}
			if c != '/' {
				return false, false
			}
		}
	}
	return true, pdf || strings.HasPrefix(data, "JVBER") // %PDF-
}
