package eval

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNowIsUTC: a template's now() is UTC whatever the machine's time zone,
// as date() and window.start are: many APIs take a time without offset as
// UTC (since=2026-03-05 09:00:00), and one formatted from local time on a
// machine two hours east of UTC asks from two hours later than meant, so
// every run skips two hours of records. The injected clock may be local
// too (the CLI's is time.Now).
func TestNowIsUTC(t *testing.T) {
	east := time.FixedZone("east", 2*3600)
	at := time.Date(2026, 3, 5, 11, 0, 0, 0, east) // 09:00 UTC
	tp, err := CompileTemplate(`${ now().Format("2006-01-02 15:04:05") }|${ now() }`, Scope{}, WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.RenderString(map[string]any{})
	if want := "2026-03-05 09:00:00|2026-03-05T09:00:00Z"; err != nil || got != want {
		t.Errorf("RenderString = %q, %v; want %q", got, err, want)
	}
	e, err := CompileExpr(`now(timezone("Asia/Tokyo")).Hour()`, nil, IntKind, WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := e.EvalInt(nil); err != nil || h != 18 {
		t.Errorf("now(tz).Hour() = %d, %v; want 18", h, err)
	}
}

// TestWallClockNowIsUTC: without an injected clock too, in a process whose
// local zone is Tokyo's.
func TestWallClockNowIsUTC(t *testing.T) {
	if os.Getenv("FERRY_NOW_UTC_CHILD") == "1" {
		tp, err := CompileTemplate(`${ now() }`, Scope{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tp.RenderString(map[string]any{})
		if err != nil || !strings.HasSuffix(got, "Z") {
			t.Errorf("now() = %q, %v; want a UTC time (…Z)", got, err)
		}
		return
	}
	if _, err := time.LoadLocation("Asia/Tokyo"); err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWallClockNowIsUTC$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FERRY_NOW_UTC_CHILD=1", "TZ=Asia/Tokyo")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("in Tokyo: %v\n%s", err, out)
	}
}
