package unixtime

import (
	"encoding/json"
	"testing"
)

func TestMillis_ShowsThreeDecimalsAlways(t *testing.T) {
	for ms, want := range map[Millis]string{
		1796597071000: "1796597071.000",
		1796597071437: "1796597071.437",
		1796597071040: "1796597071.040",
		2170884354811: "2170884354.811",
		0:             "0.000",
		-1500:         "-1.500",
	} {
		got, err := json.Marshal(ms)
		if err != nil || string(got) != want {
			t.Errorf("%d: got %s (%v), want %s", int64(ms), got, err, want)
		}
	}
}
