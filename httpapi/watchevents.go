package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"

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
	Timestamp   float64         `json:"timestamp,omitempty"`
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
	d := watchEventData{Key: v.Key, Op: v.Op, OpNumber: v.OpNumber, Timestamp: unixSeconds(v.Ts)}
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
	var b bytes.Buffer
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false) // values as they were stored, "<p>" and all
	enc.Encode(d)            // plain fields and valid JSON values: cannot fail; one line (RawMessage is compacted)
	if d.OpNumber > 0 {
		b.WriteString("id: " + strconv.FormatInt(d.OpNumber, 10) + "\n")
	}
	name := d.Op
	if d.Code != "" {
		name = "gap"
	}
	b.WriteString("event: " + name + "\ndata: ")
	b.Write(data.Bytes()) // Encode's newline ends the line
	b.WriteString("\n")
	return b.Bytes()
}
