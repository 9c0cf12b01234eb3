package httpapi

import (
	"net/http"
	"slices"
	"strings"
)

// CORS headers kvd sends to a browser page from an allowed origin.
const (
	corsAllowMethods = "GET, HEAD, PUT, POST, DELETE"
	// What a page sends: the token, a value's type, the conditional
	// writes, a watch resuming, and an id of its own.
	corsAllowHeaders = "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID, X-Request-Id"
	// What a page may read beyond the safelisted few (Content-Type,
	// Content-Length...): metadata, ids, and how long to back off.
	corsExposeHeaders = "ETag, X-Request-Id, X-Created-At, X-Updated-At, X-Expire-At, X-KV-Reference, X-KV-Reference-Target, X-Error-Code, Retry-After, WWW-Authenticate, Content-Disposition"
	corsMaxAge        = "7200" // seconds a browser may cache a preflight (Chrome's ceiling)
)

// corsPolicy says which web origins may call kvd from a browser
// (--cors-origin). The zero policy allows none and adds nothing.
type corsPolicy struct {
	any     bool // "*": every origin
	origins []string
}

func newCORSPolicy(origins []string) corsPolicy {
	var p corsPolicy
	for _, o := range origins {
		if o == "*" {
			p.any = true
		} else if o != "" {
			p.origins = append(p.origins, strings.TrimSuffix(o, "/"))
		}
	}
	return p
}

func (p corsPolicy) enabled() bool { return p.any || len(p.origins) > 0 }

// allow adds the headers that let the page of r's Origin read the answer
// (kvd's own headers included), when that origin is allowed; it reports
// whether it is. Without --cors-origin it adds nothing.
func (p corsPolicy) allow(h http.Header, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	switch {
	case !p.enabled():
		return false
	case p.any:
		h.Set("Access-Control-Allow-Origin", "*")
	case origin != "" && slices.Contains(p.origins, origin):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin") // the answer differs by origin: caches must know
	default:
		h.Add("Vary", "Origin")
		return false
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	return origin != ""
}

// isPreflight tells a browser's CORS preflight from any other OPTIONS.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// answerPreflight answers an allowed origin's preflight: 204, before any
// token check, since a browser sends a preflight without credentials.
func answerPreflight(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}
