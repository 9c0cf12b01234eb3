package httpapi

import (
	"net/http"
	"strconv"
)

// maxRequestIDLen bounds a client's X-Request-Id: enough for a UUID, a
// trace id or a proxy's id with a prefix.
const maxRequestIDLen = 128

// requestID is the client's X-Request-Id when it is sane (one header of
// 1..128 characters from [A-Za-z0-9._:-]), so a proxy's or a client's id
// follows the request through kvd's logs; anything else is replaced by
// one of kvd's own, so arbitrary bytes are never echoed nor logged.
func (s *Server) requestID(r *http.Request) string {
	if ids := r.Header.Values("X-Request-Id"); len(ids) == 1 && saneRequestID(ids[0]) {
		return ids[0]
	}
	return s.newRequestID()
}

// newRequestID is one of kvd's own request ids.
func (s *Server) newRequestID() string {
	var id [32]byte // the prefix and a counter: one allocation, the string
	return string(strconv.AppendUint(append(id[:0], s.idPrefix...), s.idCounter.Add(1), 10))
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
