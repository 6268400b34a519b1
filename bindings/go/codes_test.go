package kvc

import (
	"errors"
	"testing"
)

// The generated code list agrees with the library at run time.
func TestCodesMatchLibrary(t *testing.T) {
	if len(allCodes) != len(allCodeNames) || len(allCodes) == 0 {
		t.Fatalf("%d codes, %d names", len(allCodes), len(allCodeNames))
	}
	for i, c := range allCodes {
		if got := c.String(); got != allCodeNames[i] {
			t.Errorf("code %d: library name %q, generated %q", int(c), got, allCodeNames[i])
		}
		if c.Description() == "unknown status" {
			t.Errorf("%s: the library does not know this code", allCodeNames[i])
		}
		s := sentinelOf(c)
		if s == nil || s.Code != c {
			t.Fatalf("%s: no sentinel", allCodeNames[i])
		}
		err := error(&Error{Code: c, Message: "m"})
		if !errors.Is(err, s) {
			t.Errorf("errors.Is(%v, sentinel of %s) = false", err, c)
		}
		for _, other := range allCodes {
			if other != c && errors.Is(err, sentinelOf(other)) {
				t.Errorf("errors.Is(%v, %s) = true", err, other)
			}
		}
	}
	if last := allCodes[len(allCodes)-1]; int(last) != statusMin {
		t.Errorf("last code %d, KVC_STATUS_MIN %d", int(last), statusMin)
	}
	if TierHost.String() != "host" || MissNodeDown.String() != "node_down" || Tier(99).String() != "Tier(99)" {
		t.Errorf("String: %s %s %s", TierHost, MissNodeDown, Tier(99))
	}
}
