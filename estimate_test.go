package metis

import (
	"strings"
	"testing"
)

func TestEstimatePromptTokens(t *testing.T) {
	png := "iVBORw0KGgo" + strings.Repeat("QUJD+/9=", 100_000) // 800 KB of base64
	pdf := "JVBERi0xLjcK" + strings.Repeat("QUJD", 50_000)
	words := strings.Repeat("plain words, not base64 ", 100) // 2,400 bytes of text
	short := strings.Repeat("QUJD", 100)                     // 400 bytes: counted as text
	for _, c := range []struct {
		name, body, payload string
		fixed               int64
	}{
		{"text only", `{"messages":[{"role":"user","content":"` + words + `"}]}`, "", 0},
		{"anthropic image", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}]}]}`, png, 1000},
		{"anthropic pdf", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + pdf + `"}}]}]}`, pdf, 2000},
		{"openai data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `"}}]}]}`, "data:image/png;base64," + png, 1000},
		{"openai pdf file", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,` + pdf + `"}}]}]}`, "data:application/pdf;base64," + pdf, 2000},
		{"escaped slashes", `{"data":"` + strings.ReplaceAll(png, "/", `\/`) + `"}`, strings.ReplaceAll(png, "/", `\/`), 1000},
		{"short base64 is text", `{"data":"` + short + `"}`, "", 0},
		{"long text with a data: prefix", `{"url":"data:text/plain,` + words + `"}`, "", 0},
	} {
		want := int64(len(c.body)-len(c.payload)+3)/4 + c.fixed
		if got := estimatePromptTokens([]byte(c.body)); got != want {
			t.Errorf("%s: %d tokens, want %d", c.name, got, want)
		}
	}
}
