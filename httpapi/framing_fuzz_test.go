package httpapi

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// chunkedReader hands out src in reads of the sizes given (cycled), so a
// request's head or a chunk line can straddle reads anywhere.
type chunkedReader struct {
	src   []byte
	sizes []byte
	i     int
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.src) == 0 {
		return 0, io.EOF
	}
	n := 1 + int(r.sizes[r.i%len(r.sizes)])
	r.i++
	n = min(n, len(p), len(r.src))
	copy(p, r.src[:n])
	r.src = r.src[n:]
	return n, nil
}

// FuzzFramingGuard: whatever the bytes, and wherever reads split them, the
// guard passes every byte through in place, except that it may rename a
// Transfer-Encoding header to one of the same length; and the way reads
// split the stream never changes what comes out.
func FuzzFramingGuard(f *testing.F) {
	for _, seed := range []string{
		"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: v\r\n\r\nPUT / HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(seed), []byte{0, 3, 17})
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte) {
		if len(sizes) == 0 {
			sizes = []byte{255}
		}
		whole, err := io.ReadAll(newFramingGuard(bytes.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		split, err := io.ReadAll(newFramingGuard(&chunkedReader{src: in, sizes: sizes}))
		if err != nil {
			t.Fatal(err)
		}
		oneByOne, err := io.ReadAll(newFramingGuard(iotest.OneByteReader(bytes.NewReader(in))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, split) || !bytes.Equal(whole, oneByOne) {
			t.Fatalf("the output depends on how reads split the input:\nwhole %q\nsplit %q\n1by1  %q", whole, split, oneByOne)
		}
		if len(whole) != len(in) {
			t.Fatalf("%d bytes in, %d out", len(in), len(whole))
		}
		for i := 0; i < len(in); i++ {
			if whole[i] == in[i] {
				continue
			}
			// Only a whole header name may differ: Transfer-Encoding in, the
			// clash name out.
			start := i - bytes.LastIndexByte(whole[:i+1], '\n') - 1
			start = i - start
			end := start + len(clashHeader)
			if end > len(in) || !bytes.EqualFold(in[start:end], []byte("Transfer-Encoding")) || string(whole[start:end]) != clashHeader {
				t.Fatalf("byte %d changed (%q → %q) outside a renamed Transfer-Encoding:\nin  %q\nout %q", i, in[i], whole[i], in, whole)
			}
			i = end - 1
		}
	})
}
