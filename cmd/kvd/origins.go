package main

import (
	"fmt"
	"net"
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
		origin, err := asSent(o)
		if err != nil {
			return err
		}
		*l = append(*l, origin)
	}
	return nil
}

// asSent is o as a browser sends it as an Origin: scheme and host in lower
// case, without the scheme's default port or a trailing slash, so that
// "HTTPS://App.Example.com:443/" matches the page it names. What a browser
// never sends (a path, a missing scheme, a host in Unicode) fails at
// start instead of never matching.
func asSent(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin: write scheme://host[:port], e.g. https://app.example.com, or *", o)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	for _, r := range host {
		if r >= 0x80 {
			return "", fmt.Errorf("%q: a browser sends a host with other than ASCII letters in punycode (bücher.example as xn--bcher-kva.example); write it so", o)
		}
	}
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 address
	}
	return scheme + "://" + host, nil
}
