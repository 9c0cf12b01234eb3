package client

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
)

// Value is a value as kvd stores it: bytes and the content type they carry.
// An empty ContentType on a write lets kvd infer one.
type Value struct {
	Data        []byte
	ContentType string
}

// Text is a text/plain value.
func Text(s string) Value { return Value{Data: []byte(s), ContentType: "text/plain"} }

// RawJSON is an application/json value; kvd stores data as it is, and
// stores it as text/plain if it does not parse.
func RawJSON(data []byte) Value { return Value{Data: data, ContentType: "application/json"} }

// Binary is an application/octet-stream value.
func Binary(data []byte) Value { return Value{Data: data, ContentType: "application/octet-stream"} }

// String returns the bytes as a string.
func (v Value) String() string { return string(v.Data) }

// DecodeJSON unmarshals the bytes into out.
func (v Value) DecodeJSON(out any) error { return json.Unmarshal(v.Data, out) }

// IsJSON reports whether the content type is JSON (application/json or a
// +json type).
func (v Value) IsJSON() bool { return isJSONType(v.ContentType) }

func isJSONType(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"))
}

// Entry is a key's value with its metadata, as GET and HEAD answer.
type Entry struct {
	Key string
	Value
	CreatedAt time.Time
	UpdatedAt time.Time
	// ExpiresAt is zero unless the key has a TTL.
	ExpiresAt time.Time
	// Version is the op number of the key's last write (its ETag), for
	// IfVersion. Zero for a directory-mode file changed behind kvd's back.
	Version int64
	// Reference is true when the key is a reference; then the value and
	// times are those of ReferenceTarget, the key finally read.
	Reference       bool
	ReferenceTarget string
}

// wireValue is a value inside a JSON answer: inline JSON when its content
// type is JSON, a string when it is text, base64 otherwise.
type wireValue struct {
	Value       json.RawMessage `json:"value"`
	ContentType string          `json:"content_type"`
	Encoding    string          `json:"encoding"`
}

// value recovers the stored value; its Data is nil when there is none (a
// stored JSON null is the text null).
func (w wireValue) value() (*Value, error) {
	data, err := decodeWire(w.Value, w.ContentType, w.Encoding == "base64")
	if err != nil {
		return nil, err
	}
	return &Value{Data: data, ContentType: w.ContentType}, nil
}

func decodeWire(raw json.RawMessage, contentType string, base64Encoded bool) ([]byte, error) {
	switch {
	case len(raw) == 0:
		return nil, nil
	case string(raw) == "null" && isJSONType(contentType):
		return raw, nil // a stored JSON null
	case string(raw) == "null":
		return nil, nil // no value
	}
	if base64Encoded {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("base64 value is not a string: %w", err)
		}
		return base64.StdEncoding.DecodeString(s)
	}
	if isJSONType(contentType) || raw[0] != '"' {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}
