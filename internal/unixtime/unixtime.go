// Package unixtime shows kvd's times as JSON: Unix seconds with exactly
// three decimals. A time is passed back as at_timestamp, since or
// to_timestamp, where a whole number means the end of its second and a
// fraction names an instant; so a write at 1796597071.000, shown as
// encoding/json shows the float (1796597071), would name a later write.
package unixtime

import (
	"strconv"
	"time"
)

// Millis is a time in Unix milliseconds.
type Millis int64

// Of is t to the millisecond.
func Of(t time.Time) Millis { return Millis(t.UnixMilli()) }

// MarshalJSON writes m as Unix seconds with three decimals.
func (m Millis) MarshalJSON() ([]byte, error) { return m.AppendJSON(nil), nil }

// AppendJSON appends m as MarshalJSON writes it.
func (m Millis) AppendJSON(b []byte) []byte {
	ms := int64(m)
	if ms < 0 {
		b = append(b, '-')
		ms = -ms // a time before 1970; math.MinInt64 is no kvd time
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}
