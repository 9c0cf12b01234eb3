package httpapi

import "github.com/kvd/kvd/internal/jsontext"

// checkJSONText refuses a JSON body whose strings do not say exactly what
// was sent (jsontext.Check): encoding/json would decode them as U+FFFD, so
// the key stored would differ from the key sent. The error names the
// string ("items[3].key", or "body" for the body itself). doc must
// already be valid JSON.
func checkJSONText(doc []byte) error {
	switch flaw := jsontext.Check(doc); {
	case flaw == nil:
		return nil
	case flaw.Where == "":
		return invalidParam("Invalid JSON body: body: %s", flaw)
	default:
		return invalidParam("Invalid JSON body: %s", flaw)
	}
}
