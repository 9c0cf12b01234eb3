package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/kvd/kvd/client"
)

// output writes a command's answer: plain text by default, one JSON
// document with --json.
type output struct {
	w        io.Writer
	json     bool
	terminal bool // w is a terminal
}

func newOutput(w io.Writer, json bool) *output {
	return &output{w: w, json: json, terminal: isTerminal(w)}
}

// print writes the plain form, or with --json the JSON form, built only
// then (a big binary value's base64 copy is not made for nothing). The
// plain form is buffered, and a failed write (a closed pipe) is the
// command's error.
func (o *output) print(jsonForm func() any, plain func(w io.Writer)) error {
	if o.json {
		return writeJSON(o.w, jsonForm())
	}
	bw := bufio.NewWriter(o.w)
	plain(bw)
	return bw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal, where a value without a
// final newline would run into the prompt.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// jsonValue shows a value in JSON as kvd's batch get does: inline when it
// is JSON, a string when it is UTF-8, base64 (with encoding) otherwise.
type jsonValue struct {
	Value       any    `json:"value"`
	ContentType string `json:"content_type,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
}

func newJSONValue(v client.Value) jsonValue {
	switch {
	case v.IsJSON() && json.Valid(v.Data):
		return jsonValue{Value: json.RawMessage(v.Data), ContentType: v.ContentType}
	case utf8.Valid(v.Data):
		return jsonValue{Value: string(v.Data), ContentType: v.ContentType}
	}
	return jsonValue{Value: base64.StdEncoding.EncodeToString(v.Data), ContentType: v.ContentType, Encoding: "base64"}
}

// quote shows bytes on one line, unambiguously: a Go string literal.
func quote(b []byte) string { return strconv.Quote(string(b)) }

// jsonError is the --json form of an error, in kvd's own shape when kvd
// answered; a failure before any answer has only a message (and code
// USAGE for a usage error).
type jsonError struct {
	StatusCode int      `json:"statusCode,omitempty"`
	Code       string   `json:"code,omitempty"`
	Message    string   `json:"message"`
	RequestID  string   `json:"request_id,omitempty"`
	Keys       []string `json:"keys,omitempty"`
}

func writeJSONError(w io.Writer, err error) {
	body := jsonError{Message: err.Error()}
	var e *client.Error
	switch {
	case errors.As(err, &e):
		body = jsonError{StatusCode: e.StatusCode, Code: e.Code, Message: e.Message, RequestID: e.RequestID, Keys: e.Keys}
	case isUsage(err):
		body.Code = "USAGE"
	}
	if werr := writeJSON(w, body); werr != nil {
		fmt.Fprintln(w, err)
	}
}
