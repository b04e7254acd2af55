package metis

// Review 25R3: tests of review 25R2's mends (4cf371f, ad7364a). Each fails
// on 2ddbb8d.

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// 4cf371f bounds a zstd body's window by max_body (min(8 MB, max_body)).
// A frame's window is what its encoder declares, not its size: a frame
// whose encoder did not know the size in advance (the zstd CLI reading
// stdin, a streaming writer: Go's zstd.NewWriter, Python zstandard's
// stream_writer, Node's createZstdCompress) declares the window of its
// level (zstd -3: 2 MiB; klauspost's default: 8 MiB) and has no single-
// segment flag, whatever its size. At max_body 1MiB (nginx's default, which
// README names), a 94-byte request piped through `zstd` gets a 400 "does
// not decode"; before 4cf371f it decoded. RFC 9659 lets an encoder use up
// to 8 MB, which is the bound 9f7d12a had.
func TestReview3ZstdStreamedBodyUnderSmallMaxBody(t *testing.T) {
	const limit = 1 << 20
	want := `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`
	// printf '%s' "$want" | zstd -c   (zstd v1.5, level 3, from stdin:
	// frame header 28b52ffd 04 58 = no FCS, window 2^21)
	cli, _ := base64.StdEncoding.DecodeString("KLUv/QRYjQIAokUTGYCpOlyrCTFFGPGfywFhigb0GE1MgYMZHQGH4bCRIPi8+MU8Jl5X5vNTLrfCWY8wqlcmA8BZ8Yrcw8IoEwtKoOwRU8sRM+n4nI5SuQUAP6bA2Q==")
	t.Run("zstd-cli-stdin", func(t *testing.T) {
		got, err := decodeRequestBody("zstd", cli, limit)
		if err != nil || string(got) != want {
			t.Errorf("a %d-byte body from `zstd` at max_body %d: %v; want it decoded", len(cli), limit, err)
		}
	})
	t.Run("go-zstd-NewWriter", func(t *testing.T) {
		// A 300 KB conversation written through klauspost's streaming
		// writer at its defaults.
		plain := []byte(`{"model":"gpt-5-mini","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor sit amet ", 11000) + `"}]}`)
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		_, _ = zw.Write(plain)
		_ = zw.Close()
		got, err := decodeRequestBody("zstd", buf.Bytes(), limit)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("a %d-byte body (%d decoded) from zstd.NewWriter at max_body %d: %v; want it decoded", buf.Len(), len(plain), limit, err)
		}
	})
}
