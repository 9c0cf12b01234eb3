package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/textproto"
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
// framingSeeds start both fuzz targets: the shapes the guard follows, each
// with a clash behind it where Go would read on.
var framingSeeds = []string{
	"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
	"POST /a HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: v\r\n\r\nPUT / HTTP/1.1\r\ncontent-length: 0\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + framingClash,
	"PUT / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi" + framingClash,
	"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n" + framingClash,
	"PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nX: 1\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + framingClash,
	"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length:\r\n\t2\r\n\r\nhi" + framingClash,
	"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n\n" + framingClash,
}

const framingClash = "PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

func FuzzFramingGuard(f *testing.F) {
	for _, seed := range framingSeeds {
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

// FuzzFramingGuard_GoSeesNoClash reads what the guard passes on as Go's
// server reads a connection, request after request, until it would close
// the connection; no request it reads may carry both Content-Length and
// Transfer-Encoding. That is the guard's promise: it follows every request
// Go serves, and so renames the header in any of them.
func FuzzFramingGuard_GoSeesNoClash(f *testing.F) {
	for _, seed := range framingSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := io.ReadAll(newFramingGuard(bytes.NewReader(in)))
		if err != nil {
			t.Fatal(err)
		}
		afterPost := false
		for len(out) > 0 {
			if afterPost { // Go skips up to 4 CR and LF bytes after a POST
				n := 0
				for n < 4 && n < len(out) && (out[n] == '\r' || out[n] == '\n') {
					n++
				}
				out = out[n:]
			}
			header, headSize, err := readHead(out)
			if err != nil || headSize > 64<<10+4096 {
				return // Go refuses it and closes the connection
			}
			src := bytes.NewReader(out)
			br := bufio.NewReader(src)
			req, err := http.ReadRequest(br)
			if err != nil || req.ProtoMajor != 1 {
				return
			}
			if _, clash := header[clashHeader]; clash {
				return // kvd refuses it and closes the connection
			}
			if header["Content-Length"] != nil && header["Transfer-Encoding"] != nil {
				t.Fatalf("Go reads a request with both Content-Length and Transfer-Encoding:\nin %q\nthe request %q", in, out)
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil || req.Close {
				return
			}
			out = out[len(out)-src.Len()-br.Buffered():]
			afterPost = req.Method == http.MethodPost
		}
	})
}

// readHead reads a request's head as Go does (folded lines joined), and
// tells its size.
func readHead(b []byte) (textproto.MIMEHeader, int, error) {
	src := bytes.NewReader(b)
	br := bufio.NewReader(src)
	tp := textproto.NewReader(br)
	if _, err := tp.ReadLine(); err != nil {
		return nil, 0, err
	}
	header, err := tp.ReadMIMEHeader()
	return header, len(b) - src.Len() - br.Buffered(), err
}

// BenchmarkFramingGuard: a typical write's head and body through the
// guard, as every request on a connection goes.
func BenchmarkFramingGuard(b *testing.B) {
	req := []byte("PUT /api/v1/sqlite/kv/user%3A42?db=app HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kvbench\r\n" +
		"Content-Type: application/json\r\nContent-Length: 13\r\nAccept-Encoding: gzip\r\n\r\n{\"name\":\"ab\"}")
	src := bytes.NewReader(req)
	g := newFramingGuard(src)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(req)
		for {
			if _, err := g.Read(buf); err != nil {
				break
			}
			if src.Len() == 0 && g.state == inHead {
				break
			}
		}
	}
}
