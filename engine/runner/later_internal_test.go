package runner

import (
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the child's TZ where the machine has no zoneinfo
)

// TestLater: cursors compare as what they stand for, whatever their text.
func TestLater(t *testing.T) {
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"nil after nil", nil, nil, false},
		{"value after nil", "x", nil, true},
		{"nil after value", nil, "x", false},
		{"offset after the clocks went back", "2026-10-25T02:10:00+01:00", "2026-10-25T02:50:00+02:00", true},
		{"offset before the clocks went back", "2026-10-25T02:50:00+02:00", "2026-10-25T02:10:00+01:00", false},
		{"Jira's offset without colon", "2026-10-25T02:10:00.000+0100", "2026-10-25T02:50:00.000+0200", true},
		{"offset against Z", "2024-05-01T10:00:00+02:00", "2024-05-01T09:00:00Z", false},
		{"Z against offset", "2024-05-01T09:00:00Z", "2024-05-01T10:00:00+02:00", true},
		{"same instant, two forms", "2024-05-01T10:00:00+02:00", "2024-05-01T08:00:00Z", false},
		{"same instant, other way", "2024-05-01T08:00:00Z", "2024-05-01T10:00:00+02:00", false},
		{"fraction after none", "2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00Z", true},
		{"none before fraction", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5Z", false},
		{"longer fraction", "2024-05-01T10:00:00.55Z", "2024-05-01T10:00:00.5Z", true},
		{"int64 as a string", "100", "99", true},
		{"int64 as a string, before", "99", "100", false},
		{"Slack ts", "1714550400.000200", "1714550400.0002", false},
		{"Slack ts, later", "1714550400.000201", "1714550400.0002", true},
		{"number and digits", json.Number("1714550401"), "1714550400", true},
		{"past float64", json.Number("1761353400000000100"), json.Number("1761353400000000000"), true},
		{"past float64, before", json.Number("1761353400000000000"), json.Number("1761353400000000100"), false},
		{"float and int", 2.5, 2, true},
		{"exponent", json.Number("1e3"), 999, true},
		{"space for T, after the clocks went back", "2026-10-25 02:10:00+01:00", "2026-10-25 02:50:00+02:00", true},
		{"hours-only offset", "2026-10-25 02:10:00.5+01", "2026-10-25 02:50:00+02", true},
		{"hours-only offset, before", "2026-10-25 02:50:00+02", "2026-10-25 02:10:00.5+01", false},
		{"space for T against T", "2026-10-25 01:00:00Z", "2026-10-25T00:59:59.9Z", true},
		{"not digits", "1.2.3", "1.2", true},
		{"text", "b", "a", true},
		{"time after what is not one", "2026-03-01T09:00:00Z", "Invalid date", true},
		{"what is not a time before one", "Invalid date", "2026-03-01T09:00:00Z", false},
		{"a number is not a time", json.Number("1714550400"), "2026-03-01T09:00:00Z", false},
		// What a cursor program computes: jq gives an int, or a *big.Int
		// past int64.
		{"big.Int past int64", bigInt("10000000000000000000"), bigInt("9999999999999999999"), true},
		{"big.Int past int64, before", bigInt("9999999999999999999"), bigInt("10000000000000000000"), false},
		{"big.Int and number", bigInt("10000000000000000000"), json.Number("9999999999999999999"), true},
		{"int past float64", 1761353400000000100, 1761353400000000000, true},
		{"int past float64, before", 1761353400000000000, 1761353400000000100, false},
		{"int and number past float64", 1761353400000000001, json.Number("1761353400000000000"), true},
		{"uint64 past float64", uint64(1761353400000000001), uint64(1761353400000000000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := later(tc.a, tc.b); got != tc.want {
				t.Errorf("later(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// TestStampLike: a cursor moved back to a run's start is written as the
// records write theirs.
func TestStampLike(t *testing.T) {
	at := time.Date(2026, 3, 5, 10, 0, 0, 987654321, time.UTC)
	tests := []struct{ like, want string }{
		{"2026-03-05T10:00:06Z", "2026-03-05T10:00:00Z"},
		{"2026-03-05T10:00:06.5Z", "2026-03-05T10:00:00.9Z"},
		{"2026-03-05T10:00:06.123456Z", "2026-03-05T10:00:00.987654Z"},
		{"2026-03-05T11:00:06+01:00", "2026-03-05T11:00:00+01:00"},
		{"2026-03-05T10:00:06+00:00", "2026-03-05T10:00:00+00:00"},
		{"2026-03-05T11:00:06.000+0100", "2026-03-05T11:00:00.987+0100"},
		{"2026-03-05T10:00:06.000+0000", "2026-03-05T10:00:00.987+0000"},
		{"2026-03-05 10:00:06.123456+00:00", "2026-03-05 10:00:00.987654+00:00"},
		{"2026-03-05 11:00:06.12+01", "2026-03-05 11:00:00.98+01"},
		{"2026-03-05T05:00:06-05", "2026-03-05T05:00:00-05"},
		{"2026-03-05 11:00:06+0100", "2026-03-05 11:00:00+0100"},
	}
	for _, tc := range tests {
		lt, ok := instant(tc.like)
		if !ok {
			t.Fatalf("instant(%q) = false", tc.like)
		}
		if got := stampLike(at.In(lt.Location()), tc.like); got != tc.want {
			t.Errorf("stampLike(%v, %q) = %q, want %q", at, tc.like, got, tc.want)
		}
	}
}

// TestCappedKeepsTheRecordsOffset: a capped cursor is written with the
// offset the records are written with, whatever the machine's zone. Go
// parses "+00:00" into the local zone when that is its offset then
// (Europe/London in winter); moved back into summer, the cap came out
// "+01:00", an hour later to an API that reads the wall time only, or
// compares stamps as text. Run in a child process with TZ set, as the
// local zone is read once per process.
func TestCappedKeepsTheRecordsOffset(t *testing.T) {
	if os.Getenv("FERRY_TZ_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCappedKeepsTheRecordsOffset$", "-test.v")
		cmd.Env = append(os.Environ(), "FERRY_TZ_CHILD=1", "TZ=Europe/London")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestCappedKeepsTheRecordsOffset") {
			t.Fatalf("child (TZ=Europe/London): %v\n%s", err, out)
		}
		return
	}
	if time.Local.String() != "Europe/London" {
		t.Fatalf("local zone %s, want Europe/London (TZ not applied)", time.Local)
	}
	// The run began in summer time; the records are stamped after the
	// clocks went back.
	c := &chainRun{began: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC)}
	tests := []struct{ cur, want string }{
		{"2026-10-27T12:00:00+00:00", "2026-10-24T11:59:59+00:00"},
		{"2026-10-27T12:00:00.000+0000", "2026-10-24T11:59:59.000+0000"},
		{"2026-10-27T12:00:00Z", "2026-10-24T11:59:59Z"},
		{"2026-10-27T13:00:00+01:00", "2026-10-24T12:59:59+01:00"},
	}
	for _, tc := range tests {
		if got := c.capped(tc.cur); got != tc.want {
			t.Errorf("capped(%q) = %v, want %q", tc.cur, got, tc.want)
		}
	}
}

// TestEpochCursors: an initial cursor of 10, 13, 16 or 19 whole digits is
// a time in epoch seconds, milliseconds, microseconds or nanoseconds (any
// other number may be an id); a cursor after a time, in that unit, is held
// at it written as the cursor is (a Slack ts keeps its six fraction digits).
func TestEpochCursors(t *testing.T) {
	units := []struct {
		initial any
		want    time.Duration
	}{
		{1767225600, time.Second}, {json.Number("1767225600000"), time.Millisecond},
		{"1767225600.000100", time.Second}, {json.Number("1767225600000000"), time.Microsecond},
		{json.Number("1767225600000000000"), time.Nanosecond}, {0, 0}, {json.Number("123456"), 0},
		{"2026-01-01T00:00:00Z", 0}, {-1767225600, 0}, {nil, 0},
	}
	for _, tc := range units {
		if got := epochUnit(tc.initial); got != tc.want {
			t.Errorf("epochUnit(%v) = %v, want %v", tc.initial, got, tc.want)
		}
	}
	began := time.Date(2026, 3, 5, 10, 0, 0, 0, time.UTC) // 1772704800
	after := []struct {
		cur  any
		unit time.Duration
		want bool
	}{
		{json.Number("1772704801"), time.Second, true}, {json.Number("1772704800"), time.Second, false},
		{"1772704800.000001", time.Second, true}, {json.Number("1772704800001"), time.Millisecond, true},
		// Milliseconds among seconds: far past what a time.Time holds.
		{json.Number("1772704700000"), time.Second, true},
		{json.Number("1772704700"), time.Millisecond, false},
	}
	for _, tc := range after {
		if got, ok := epochAfter(tc.cur, tc.unit, began); !ok || got != tc.want {
			t.Errorf("epochAfter(%v, %v) = %v, %v, want %v", tc.cur, tc.unit, got, ok, tc.want)
		}
	}
	if got, ok := epochTime(json.Number("1772704800000"), time.Millisecond); !ok || !got.Equal(began) {
		t.Errorf("epochTime(1772704800000, ms) = %v, %v, want %v", got, ok, began)
	}
	if got, ok := epochTime("1772704800.5", time.Second); !ok || !got.Equal(began.Add(500*time.Millisecond)) {
		t.Errorf("epochTime(\"1772704800.5\", s) = %v, %v, want half a second after %v", got, ok, began)
	}
	if _, ok := epochTime(json.Number("1772704800000"), time.Second); ok {
		t.Error("epochTime(1772704800000, s): a time past what time.Time holds was read")
	}
	like := []struct {
		cur  any
		unit time.Duration
		want any
	}{
		{json.Number("1772709999"), time.Second, json.Number("1772704800")},
		{json.Number("1772709999000"), time.Millisecond, json.Number("1772704800000")},
		{"1772709999.123456", time.Second, "1772704800.000000"},
		{int64(1772709999), time.Second, int64(1772704800)},
		{float64(1772709999), time.Second, float64(1772704800)},
	}
	for _, tc := range like {
		if got := epochLike(began, tc.unit, tc.cur); got != tc.want {
			t.Errorf("epochLike(%v, %v) = %#v, want %#v", tc.cur, tc.unit, got, tc.want)
		}
	}
}

// TestNaiveTime: a date and time without a UTC offset is told from a time
// with one, a date alone and anything else.
func TestNaiveTime(t *testing.T) {
	for v, want := range map[any]bool{
		"2026-03-05T10:00:06": true, "2026-03-05 10:00:06.123": true, "2026-03-05T10:00": true,
		"2026-03-05T10:00:06Z": false, "2026-03-05 10:00:06+00": false, "2026-03-05T10:00:06.5+0200": false,
		"2026-03-05": false, "Invalid date": false, "2026-13-05T10:00:06": false, 1767225600: false,
	} {
		if got := naiveTime(v); got != want {
			t.Errorf("naiveTime(%v) = %v, want %v", v, got, want)
		}
	}
}

func bigInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return n
}
