package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/kvd/kvd/sqlitekv"
)

// ETags are a key's version, quoted: "42". Conditional requests follow
// HTTP (RFC 9110 section 13): If-Match compares strongly, so a weak tag
// (W/"42") never matches it; If-None-Match compares weakly.

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// versionConditions reads If-Match and If-None-Match: each `*` or a
// comma-separated list of ETags. A header sent on several lines is one
// list (RFC 9110 section 5.3): its first line alone could let through a
// write that another line forbids.
func versionConditions(r *http.Request) (v sqlitekv.Versions, err error) {
	if v.MatchAny, v.Match, err = etagList(r.Header.Values("If-Match"), true); err != nil {
		return v, invalidParam("If-Match must be * or ETags such as \"42\"")
	}
	if v.Absent, v.NoneMatch, err = etagList(r.Header.Values("If-None-Match"), false); err != nil {
		return v, invalidParam("If-None-Match must be * or ETags such as \"42\"")
	}
	return v, nil
}

// writeConditions reads a write's If-Match and If-None-Match. They
// compare one key's version, so a write that names no key (a batch, a
// table's rollback, a database's creation) refuses them: ignored, they
// would let through a write their client meant to make conditional.
func writeConditions(r *http.Request, t target) (sqlitekv.Versions, error) {
	if len(r.Header["If-Match"]) == 0 && len(r.Header["If-None-Match"]) == 0 {
		return sqlitekv.Versions{}, nil
	}
	v, err := versionConditions(r)
	if err == nil && t.key == "" && v.Given() {
		err = invalidParam("If-Match and If-None-Match compare one key's version, and this write names no key; a batch or a table's rollback cannot take them")
	}
	return v, err
}

// etagList parses a header's lines as one list; with strong, weak tags
// become version 0, which no write has, so they never match. Empty
// elements are skipped, as RFC 9110 section 5.6.1.2 asks ("1",, "2"); a
// header sent with nothing else (If-Match: , or empty) is refused, since
// its sender meant some condition.
func etagList(lines []string, strong bool) (star bool, versions []int64, err error) {
	if len(lines) == 0 {
		return false, nil, nil
	}
	h := strings.TrimSpace(strings.Join(lines, ","))
	if h == "*" {
		return true, nil, nil
	}
	for _, tag := range splitTags(h) {
		if tag = strings.TrimSpace(tag); tag == "" {
			continue
		}
		weak := strings.HasPrefix(tag, "W/")
		v, err := parseETag(strings.TrimPrefix(tag, "W/"))
		if err != nil {
			return false, nil, err
		}
		if weak && strong {
			v = 0
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return false, nil, strconv.ErrSyntax
	}
	return false, versions, nil
}

// splitTags splits a list of entity-tags at the commas between them; a
// comma inside a tag's quotes is part of the tag ("a,b" is one).
func splitTags(h string) []string {
	var tags []string
	start, quoted := 0, false
	for i := range len(h) {
		switch h[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				tags, start = append(tags, h[start:i]), i+1
			}
		}
	}
	return append(tags, h[start:])
}

// parseETag reads an entity-tag without its W/ (RFC 9110 section 8.8.3).
// kvd's are versions, "42"; any other well-formed tag ("abc", "", "007")
// is no version kvd gave, 0, which matches nothing: a condition on it
// fails as HTTP says, neither refused nor ignored. Only a malformed tag
// is an error.
func parseETag(s string) (int64, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return 0, strconv.ErrSyntax
	}
	opaque := s[1 : len(s)-1]
	for i := range len(opaque) {
		if c := opaque[i]; c == '"' || c <= ' ' || c == 0x7f {
			return 0, strconv.ErrSyntax
		}
	}
	if v, err := strconv.ParseInt(opaque, 10, 64); err == nil && v > 0 && etag(v) == s {
		return v, nil
	}
	return 0, nil
}

// hasETag tells whether a read of e carries an ETag. A file changed
// behind kvd's back has no version yet. A read through a reference gets
// none either: the target's version would be no use to If-Match on the
// reference, which has a version of its own.
func hasETag(e sqlitekv.Entry) bool { return e.Version > 0 && e.RefTarget == "" }

// readCondition applies If-Match (412) and If-None-Match (304) to an
// entry a GET or HEAD found; 0 means answer as usual. A malformed header
// is ignored, as caches expect, and so are both on a read through a
// reference, which has no ETag of its own to compare. A file changed
// behind kvd's back has no version yet, so no tag a client holds names
// it: If-Match with tags fails, and If-None-Match * still finds it
// (both were ignored, and If-Match "1" served the file's new bytes).
func readCondition(r *http.Request, e sqlitekv.Entry) int {
	v, err := versionConditions(r)
	if err != nil || e.RefTarget != "" {
		return 0
	}
	version := e.Version
	if version == 0 {
		version = -1 // not the 0 that a tag kvd never gave ("abc") reads as
	}
	switch {
	case v.MatchFails(version, true):
		return http.StatusPreconditionFailed
	case v.NoneMatchHits(version, true):
		return http.StatusNotModified
	}
	return 0
}
