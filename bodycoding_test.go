package metis

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// decodedLimit lets exactly the limit through and refuses one byte more,
// whatever the sizes of the reads.
func TestDecodedLimit(t *testing.T) {
	for _, c := range []struct {
		size int
		fits bool
	}{{99, true}, {100, true}, {101, false}, {1 << 20, false}} {
		for _, chunk := range []int{1, 7, 100, 4096} {
			l := &decodedLimit{r: io.LimitReader(strings.NewReader(strings.Repeat("x", c.size)), int64(c.size)), n: 100}
			var got int
			var err error
			buf := make([]byte, chunk)
			for err == nil {
				var n int
				n, err = l.Read(buf)
				got += n
			}
			if c.fits && (err != io.EOF || got != c.size) {
				t.Errorf("%d bytes in reads of %d: %d read, %v; want all of them", c.size, chunk, got, err)
			}
			if !c.fits && (!errors.Is(err, errDecodedTooLarge) || got > 100) {
				t.Errorf("%d bytes in reads of %d: %d read, %v; want errDecodedTooLarge after at most 100", c.size, chunk, got, err)
			}
		}
	}
}
