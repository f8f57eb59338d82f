package plugins

import (
	"testing"
	"time"
)

// TestDecodeDurationsAsSettings: an option takes every duration a setting
// takes (config.DecodeDuration), "2.5" included, and refuses the same.
func TestDecodeDurationsAsSettings(t *testing.T) {
	type opts struct {
		D time.Duration `option:"d"`
	}
	for in, want := range map[any]time.Duration{
		2: 2 * time.Second, "2": 2 * time.Second, 2.5: 2500 * time.Millisecond, "2.5": 2500 * time.Millisecond,
		"250ms": 250 * time.Millisecond, "1m30s": 90 * time.Second,
	} {
		var o opts
		if err := Decode(map[string]any{"d": in}, &o); err != nil || o.D != want {
			t.Errorf("d: %#v: got %v, %v; want %v", in, o.D, err, want)
		}
	}
	for in, want := range map[any]string{
		"soon": `options.d: not a duration: "soon"`,
		"inf":  `options.d: not a duration: "inf"`,
		true:   "options.d: must be a duration (seconds, or a Go duration such as 1m30s), got true (a boolean)",
	} {
		var o opts
		if err := Decode(map[string]any{"d": in}, &o); err == nil || err.Error() != want {
			t.Errorf("d: %#v: error %v, want %s", in, err, want)
		}
	}
}
