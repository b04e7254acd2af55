package sse

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/metisgateway/metis/internal/vcr"
)

type got struct {
	Name    string
	Data    string
	HasData bool
	Raw     string
	Comment bool
}

// readAll drains r, copying each event since Data/Raw are only valid until
// the next call.
func readAll(t testing.TB, r *Reader) ([]got, error) {
	var out []got
	for {
		ev, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, got{ev.Name, string(ev.Data), ev.Data != nil, string(ev.Raw), ev.Comment})
		if len(out) > 1<<20 {
			t.Fatalf("runaway reader")
		}
	}
}

// readers returns the same input through several chunkings.
func readers(s string) map[string]func() io.Reader {
	return map[string]func() io.Reader{
		"whole":   func() io.Reader { return strings.NewReader(s) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":    func() io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
}

func TestReaderCases(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []got
	}{
		{
			name: "lf",
			in:   "event: a\ndata: {\"x\":1}\n\nevent: b\ndata: 2\n\n",
			want: []got{
				{Name: "a", Data: `{"x":1}`, HasData: true, Raw: "event: a\ndata: {\"x\":1}\n\n"},
				{Name: "b", Data: "2", HasData: true, Raw: "event: b\ndata: 2\n\n"},
			},
		},
		{
			name: "crlf",
			in:   "event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n",
			want: []got{
				{Name: "a", Data: "1", HasData: true, Raw: "event: a\r\ndata: 1\r\n\r\n"},
				{Data: "2", HasData: true, Raw: "data: 2\r\n\r\n"},
			},
		},
		{
			name: "lone cr",
			in:   "data: 1\r\rdata: 2\r\r",
			want: []got{
				{Data: "1", HasData: true, Raw: "data: 1\r\r"},
				{Data: "2", HasData: true, Raw: "data: 2\r\r"},
			},
		},
		{
			name: "multi-line data and no space",
			in:   "data:a\ndata: b\ndata:  c\n\n",
			want: []got{{Data: "a\nb\n c", HasData: true, Raw: "data:a\ndata: b\ndata:  c\n\n"}},
		},
		{
			name: "comment, id, retry",
			in:   ": ping\n\nid: 7\nretry: 100\n: note\ndata: x\n\n",
			want: []got{
				{Comment: true, Raw: ": ping\n\n"},
				{Data: "x", HasData: true, Raw: "id: 7\nretry: 100\n: note\ndata: x\n\n"},
			},
		},
		{
			name: "empty data field and bare data",
			in:   "data:\n\ndata\n\n",
			want: []got{
				{HasData: true, Raw: "data:\n\n"},
				{HasData: true, Raw: "data\n\n"},
			},
		},
		{
			name: "trailing event without blank line",
			in:   "data: 1\n\ndata: [DONE]\n",
			want: []got{
				{Data: "1", HasData: true, Raw: "data: 1\n\n"},
				{Data: "[DONE]", HasData: true, Raw: "data: [DONE]\n"},
			},
		},
		{
			name: "trailing event without any newline",
			in:   "data: 1",
			want: []got{{Data: "1", HasData: true, Raw: "data: 1"}},
		},
		{
			name: "leading and trailing blank lines kept in Raw",
			in:   "\n\ndata: 1\n\n\n",
			want: []got{
				{Data: "1", HasData: true, Raw: "\n\ndata: 1\n\n"},
				{Raw: "\n"},
			},
		},
		{
			name: "last event name wins",
			in:   "event: a\nevent: b\ndata: 1\n\n",
			want: []got{{Name: "b", Data: "1", HasData: true, Raw: "event: a\nevent: b\ndata: 1\n\n"}},
		},
		{
			name: "empty input",
			in:   "",
		},
	}
	for _, tc := range cases {
		for rn, mk := range readers(tc.in) {
			t.Run(tc.name+"/"+rn, func(t *testing.T) {
				evs, err := readAll(t, NewReader(mk()))
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if len(evs) != len(tc.want) {
					t.Fatalf("got %d events %+v, want %d %+v", len(evs), evs, len(tc.want), tc.want)
				}
				for i := range evs {
					if evs[i] != tc.want[i] {
						t.Errorf("event %d = %+v, want %+v", i, evs[i], tc.want[i])
					}
				}
			})
		}
	}
}

func TestReaderTooLarge(t *testing.T) {
	r := NewReader(strings.NewReader("data: 1\n\ndata: " + strings.Repeat("x", 100) + "\n\n"))
	r.SetMaxEventSize(64)
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "1" {
		t.Fatalf("first event = %q, %v", ev.Data, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("err = %v, want ErrEventTooLarge", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("error not sticky: %v", err)
	}
}

func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("y", 3<<20)
	r := NewReader(iotest.HalfReader(strings.NewReader("data: " + long + "\n\n")))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != long {
		t.Fatalf("long event: len %d, %v", len(ev.Data), err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: 1\n\ndata: par"), iotest.ErrReader(boom)))
	if ev, err := r.Next(); err != nil || string(ev.Data) != "1" {
		t.Fatalf("first = %q %v", ev.Data, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	if _, err := NewReader(zeroReader{}).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v", err)
	}
}

func TestBuffered(t *testing.T) {
	r := NewReader(strings.NewReader("data: 1\n\ndata: 2\n\n"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if !r.Buffered() {
		t.Fatal("second event should be buffered")
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() {
		t.Fatal("nothing should be buffered")
	}
}

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "message_stop", []byte(`{"type":"message_stop"}`)); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, "", []byte("[DONE]")); err != nil {
		t.Fatal(err)
	}
	want := "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\ndata: [DONE]\n\n"
	if b.String() != want {
		t.Fatalf("wrote %q, want %q", b.String(), want)
	}
	if err := Write(&b, "", []byte("a\nb")); !errors.Is(err, ErrNewline) {
		t.Fatalf("err = %v", err)
	}
	if err := Write(&b, "x\r", nil); !errors.Is(err, ErrNewline) {
		t.Fatalf("err = %v", err)
	}
	evs, err := readAll(t, NewReader(strings.NewReader(want)))
	if err != io.EOF || len(evs) != 2 || evs[0].Name != "message_stop" || evs[1].Data != "[DONE]" {
		t.Fatalf("round trip: %+v %v", evs, err)
	}
}

// sseBodies returns the SSE response bodies of every fixture.
func sseBodies(t testing.TB) map[string]string {
	names, err := filepath.Glob(filepath.Join(vcr.Dir(), "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		if !strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".sse") {
			continue
		}
		for i, it := range vcr.MustLoad(n) {
			if strings.Contains(it.ResponseHeader.Get("Content-Type"), "event-stream") {
				out[filepath.Base(n)+"#"+string(rune('0'+i))] = it.ResponseBody
			}
		}
	}
	if len(out) < 3 {
		t.Fatalf("found only %d SSE fixtures", len(out))
	}
	return out
}

func TestReaderFixtures(t *testing.T) {
	for name, body := range sseBodies(t) {
		want := vcr.SplitEvents(body)
		for rn, mk := range readers(body) {
			t.Run(name+"/"+rn, func(t *testing.T) {
				evs, err := readAll(t, NewReader(mk()))
				if err != io.EOF {
					t.Fatal(err)
				}
				if len(evs) != len(want) {
					t.Fatalf("%d events, want %d", len(evs), len(want))
				}
				for i, ev := range evs {
					if ev.Raw != want[i] {
						t.Errorf("event %d Raw = %q, want %q", i, ev.Raw, want[i])
					}
					if !ev.HasData {
						t.Errorf("event %d has no data", i)
					}
				}
			})
		}
	}
	// Spot checks on the Anthropic stream.
	body := vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody
	evs, _ := readAll(t, NewReader(strings.NewReader(body)))
	if evs[0].Name != "message_start" || !strings.HasPrefix(evs[0].Data, `{"type":"message_start"`) {
		t.Errorf("first event = %+v", evs[0])
	}
	if last := evs[len(evs)-1]; last.Name != "message_stop" || last.Data != `{"type":"message_stop"       }` {
		t.Errorf("last event = %+v", last)
	}
}

func FuzzReader(f *testing.F) {
	for _, body := range sseBodies(f) {
		f.Add([]byte(body), uint8(7))
	}
	f.Add([]byte("data: 1\r\n\r\n: c\r\rdata:x\ndata\n\n\n"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		whole, err := readAll(t, NewReader(bytes.NewReader(in)))
		if err != io.EOF {
			t.Fatalf("err = %v", err)
		}
		var cat strings.Builder
		for _, ev := range whole {
			cat.WriteString(ev.Raw)
			if ev.Raw == "" {
				t.Fatal("empty Raw")
			}
		}
		if cat.String() != string(in) {
			t.Fatalf("Raw concatenation %q != input %q", cat.String(), in)
		}
		// The same input split into small reads gives the same events.
		n := int(chunk%16) + 1
		split, err := readAll(t, NewReader(&chunkReader{b: in, n: n}))
		if err != io.EOF {
			t.Fatalf("chunked err = %v", err)
		}
		if len(split) != len(whole) {
			t.Fatalf("chunked: %d events, whole: %d", len(split), len(whole))
		}
		for i := range split {
			if split[i] != whole[i] {
				t.Fatalf("event %d: chunked %+v, whole %+v", i, split[i], whole[i])
			}
		}
		// A small cap never panics or hangs.
		small := NewReader(bytes.NewReader(in))
		small.SetMaxEventSize(int(chunk) + 1)
		if _, err := readAll(t, small); err != io.EOF && !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("capped err = %v", err)
		}
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func BenchmarkReader(b *testing.B) {
	body := []byte(vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody)
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r := NewReader(rd)
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, "content_block_delta", data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReaderLinear guards against quadratic rescans: a big event made of
// lone-CR lines, and a long run of LF-only events in one read.
func TestReaderLinear(t *testing.T) {
	in := strings.Repeat("data: x\r", 1<<17) + "\r"
	r := NewReader(strings.NewReader(in))
	ev, err := r.Next()
	if err != nil || len(ev.Data) != 2*(1<<17)-1 {
		t.Fatalf("len %d, %v", len(ev.Data), err)
	}
	in = strings.Repeat("data: 1\n\n", 1<<17)
	evs, err := readAll(t, NewReader(strings.NewReader(in)))
	if err != io.EOF || len(evs) != 1<<17 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

// TestReady reports a complete buffered event, never a partial one, and
// does not disturb what Next returns.
func TestReady(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr)
	go func() {
		_, _ = pw.Write([]byte("event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: c\nda"))
	}()
	ev, err := r.Next()
	if err != nil || ev.Name != "a" {
		t.Fatalf("first %q %v", ev.Name, err)
	}
	if !r.Ready() {
		t.Fatal("event b is buffered but Ready says no")
	}
	if !r.Ready() {
		t.Fatal("event b is buffered but a second Ready says no")
	}
	ev, err = r.Next()
	if err != nil || ev.Name != "b" || string(ev.Data) != "2" || string(ev.Raw) != "event: b\ndata: 2\n\n" {
		t.Fatalf("second %q %q %q %v", ev.Name, ev.Data, ev.Raw, err)
	}
	if r.Ready() {
		t.Fatal("half of event c is buffered, yet Ready says an event is")
	}
	go func() {
		_, _ = pw.Write([]byte("ta: 3\n\n"))
		pw.Close()
	}()
	ev, err = r.Next()
	if err != nil || ev.Name != "c" || string(ev.Raw) != "event: c\ndata: 3\n\n" {
		t.Fatalf("third %q %q %v", ev.Name, ev.Raw, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// Only an event the stream ended inside is Unterminated, so a relay can
// tell a provider's last event sent without its blank line, or cut
// mid-line, from a whole one.
func TestReaderUnterminated(t *testing.T) {
	for in, want := range map[string][]bool{
		"data: a\n\n":                       {false},
		"data: a\n\ndata: b":                {false, true},
		"data: a\n\ndata: [DONE]\n":         {false, true},
		"event: message_start\ndata: {\"ty": {true},
		"data: a\n\n\n":                     {false, true}, // a trailing blank line, returned as an empty event
	} {
		rd := NewReader(strings.NewReader(in))
		var got []bool
		for {
			ev, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			got = append(got, ev.Unterminated)
		}
		if len(got) != len(want) {
			t.Errorf("%q: unterminated %v, want %v", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: unterminated %v, want %v", in, got, want)
				break
			}
		}
	}
}
