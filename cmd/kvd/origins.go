package main

import (
	"fmt"
	"net/url"
	"strings"
)

// originList is --cors-origin: web origins (scheme://host[:port]) or "*".
// Set takes a comma- or space-separated list, so KVD_CORS_ORIGIN can name
// several (an origin holds a ':', the separator of other lists).
type originList []string

func (l *originList) String() string { return strings.Join(*l, ",") }

func (l *originList) Set(v string) error {
	for _, o := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if err := checkOrigin(o); err != nil {
			return err
		}
		*l = append(*l, strings.TrimSuffix(o, "/"))
	}
	return nil
}

// checkOrigin refuses what a browser never sends as an Origin, so a typo
// (a path, a missing scheme) fails at start instead of never matching.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com, or *", o)
	}
	return nil
}
