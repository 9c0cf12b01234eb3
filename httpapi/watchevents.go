package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/kvd/kvd/internal/unixtime"
	"github.com/kvd/kvd/sqlitekv"
	"github.com/kvd/kvd/watch"
)

type watchPollResponse struct {
	Events []watchEventData `json:"events"`
	NextOp int64            `json:"next_op"` // pass it as after_op to go on
}

// watchEventData is an event's data line: a write, with its value as
// history shows it, or a gap (Code and ResumeOp).
type watchEventData struct {
	Key         string          `json:"key,omitempty"`
	Op          string          `json:"op,omitempty"`
	OpNumber    int64           `json:"op_number,omitempty"`
	Timestamp   unixtime.Millis `json:"timestamp,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	RawValue    *string         `json:"raw_value,omitempty"` // a pointer: "" is an empty value
	ContentType string          `json:"content_type,omitempty"`
	Code        sqlitekv.Code   `json:"code,omitempty"`
	ResumeOp    int64           `json:"resume_op,omitempty"`
}

// eventData shows ev. A write made with history=false is a gap too: its
// value was never kept, so history cannot show it, and the stream shows
// what history does.
func eventData(ev *watch.Event) watchEventData {
	if ev.Gap > 0 {
		return watchEventData{Code: sqlitekv.CodeTimeTravelGap, ResumeOp: ev.Gap}
	}
	v := ev.Write
	d := watchEventData{Key: v.Key, Op: v.Op, OpNumber: v.OpNumber, Timestamp: unixtime.Millis(v.Ts)}
	switch {
	case !v.Recorded:
		d.Code, d.ResumeOp = sqlitekv.CodeTimeTravelGap, v.OpNumber+1
	case !v.Removes():
		d.Value, d.RawValue = historyValue(v.Entry)
		d.ContentType = v.Entry.ContentType
	}
	return d
}

// sseEvent renders ev as one Server-Sent Event. A pruned gap carries no
// id: a client that reconnects resumes after the last write it saw.
func sseEvent(ev *watch.Event) []byte {
	d := eventData(ev)
	b := make([]byte, 0, 128+len(d.Key)+len(d.Value)+rawLen(d.RawValue))
	if d.OpNumber > 0 {
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, d.OpNumber, 10)
		b = append(b, '\n')
	}
	name := d.Op
	if d.Code != "" {
		name = "gap"
	}
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = appendEventData(b, d)
	return append(b, "\n\n"...)
}

func rawLen(s *string) int {
	if s == nil {
		return 0
	}
	return len(*s)
}

// appendEventData writes d as encoding/json would (without HTML
// escaping), by hand: a stream renders every event it sends, and under a
// hot key that is tens of thousands a second, where reflection cost a
// tenth of kvd's CPU. A test holds the two to the same bytes.
func appendEventData(b []byte, d watchEventData) []byte {
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if d.Key != "" {
		field("key")
		b = appendJSONString(b, d.Key)
	}
	if d.Op != "" {
		field("op")
		b = appendJSONString(b, d.Op)
	}
	if d.OpNumber != 0 {
		field("op_number")
		b = strconv.AppendInt(b, d.OpNumber, 10)
	}
	if d.Timestamp != 0 {
		field("timestamp")
		b = d.Timestamp.AppendJSON(b)
	}
	if len(d.Value) > 0 {
		field("value")
		b = appendCompactJSON(b, d.Value)
	}
	if d.RawValue != nil {
		field("raw_value")
		b = append(b, '"')
		b = append(b, *d.RawValue...) // base64: nothing to escape
		b = append(b, '"')
	}
	if d.ContentType != "" {
		field("content_type")
		b = appendJSONString(b, d.ContentType)
	}
	if d.Code != "" {
		field("code")
		b = appendJSONString(b, string(d.Code))
	}
	if d.ResumeOp != 0 {
		field("resume_op")
		b = strconv.AppendInt(b, d.ResumeOp, 10)
	}
	return append(b, '}')
}

// appendCompactJSON appends a valid JSON value on one line: a data line
// ends at a line break.
func appendCompactJSON(b, v []byte) []byte {
	if !bytes.ContainsAny(v, " \t\r\n") {
		return append(b, v...)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return append(b, "null"...) // not JSON after all: cannot happen (historyValue checked)
	}
	return append(b, buf.Bytes()...)
}

// appendJSONString quotes s as encoding/json does without HTML escaping:
// quotes, backslashes and control characters escaped, invalid UTF-8 as
// U+FFFD, and U+2028, U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
