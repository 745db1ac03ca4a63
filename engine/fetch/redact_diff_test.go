package fetch

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-etl/ferry/engine/internal/redact"
)

// oldText is redactor.text as it was before its pre-checks: every text
// through QueryParams and the Replacer. It is the oracle of
// TestTextIsTheOldText.
func oldText(r *redactor, s string) string {
	r.mu.RLock()
	rep := r.rep
	s = redact.QueryParams(s, func(name string) bool {
		_, ok := r.params[strings.ToLower(name)]
		return ok
	}, Redacted)
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// randomText joins a few pieces: known secret forms whole or cut short,
// query parameters in each syntax, multi-byte and invalid UTF-8, and bytes
// that escaping and the pre-checks care about.
func randomText(rng *rand.Rand, forms []string) string {
	var b strings.Builder
	for range rng.IntN(7) {
		switch k := rng.IntN(10); {
		case k < 3 && len(forms) > 0:
			b.WriteString(forms[rng.IntN(len(forms))])
		case k < 5 && len(forms) > 0:
			f := forms[rng.IntN(len(forms))]
			if rng.IntN(2) == 0 {
				b.WriteString(f[:rng.IntN(len(f))])
			} else {
				b.WriteString(f[rng.IntN(len(f)):])
			}
		case k < 7:
			b.WriteString([]string{"?sig=", "&Signature=", `\u0026sig=`, `\U0026X-Amz-Signature=`, ";access_token=", "&amp;sig=",
				"?x=", "sig=", "&sig=<t>", "?SIG%3D=", "?si%67=", "=", "?", "&", ";", `\`}[rng.IntN(16)])
		case k < 8:
			b.WriteString([]string{"ä", "€", "𝄞", "\xff", "\xe2\x82", "\u2028", "\x00", " ..."}[rng.IntN(8)])
		default:
			const bytes = `abcd1234wxyz%2F+/"\<>&'!*() .-_`
			for range 1 + rng.IntN(8) {
				b.WriteByte(bytes[rng.IntN(len(bytes))])
			}
		}
	}
	return b.String()
}

// TestTextIsTheOldText: text, with its pre-checks, gives what every text
// through QueryParams and the Replacer gave, on random texts with the
// secrets' forms in them; before any secret, and as secrets are added (an
// OAuth2 token arrives during a run). Secrets overlap, contain each other,
// hold multi-byte and escaped characters.
func TestTextIsTheOldText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRedactor()
	phases := [][]string{
		nil,
		{"abcd1234", "1234wxyz", "cd12", "abcd1234wxyz"},
		{"päss/wörd+€ x", `tok&en<>"'\`, "50%off!*()'~", "ab\xffcd", "0123456789abcdefghijklmnopqrstuvwxyz-0123456789"},
	}
	// full is told the same secrets and always rebuilt: the oracle's
	// Replacer, while r keeps its newest secrets pending.
	full := newRedactor()
	for i, secrets := range phases {
		r.addSecrets(secrets...)
		full.addSecrets(secrets...)
		full.fresh()
		forms := r.values()
		if i == 0 {
			forms = []string{"abcd1234", "päss/wörd+€ x"}
		}
		changed := 0
		const n = 100000
		for range n {
			s := randomText(rng, forms)
			got := r.text(s)
			if want := oldText(full, s); got != want {
				t.Fatalf("phase %d: text(%q)\n got %q\nwant %q", i, s, got, want)
			}
			if got != s {
				changed++
			}
		}
		t.Logf("phase %d: %d of %d texts redacted", i, changed, n)
		if changed < n/10 {
			t.Errorf("phase %d: only %d of %d texts redacted: the test hardly tries the Replacer", i, changed, n)
		}
	}
}

// TestTextSeesSecretsAddedMeanwhile: a secret added while texts are being
// redacted is redacted in every text after addSecrets returns.
func TestTextSeesSecretsAddedMeanwhile(t *testing.T) {
	r := newRedactor()
	r.addSecrets("first-secret")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := r.text("a first-secret b"); got != "a REDACTED b" {
					t.Errorf("text = %q", got)
					return
				}
			}
		})
	}
	for i := range 50 {
		tok := "token-" + strings.Repeat("x", i) + "-later"
		r.addSecrets(tok)
		if got := r.text("Bearer " + tok + "!"); got != "Bearer REDACTED!" {
			t.Errorf("after addSecrets(%q): text = %q", tok, got)
		}
	}
	close(stop)
	wg.Wait()
}

// TestPendingSecretsRedacted: a secret added after the Replacer was built
// waits in pending; a text without it is redacted by the Replacer as it
// stands, and one with it, even where it holds a known shorter secret, is
// redacted with it whole.
func TestPendingSecretsRedacted(t *testing.T) {
	r := newRedactor()
	r.addSecrets("cd12")
	if got := r.text("x cd12 y"); got != "x "+Redacted+" y" {
		t.Fatalf("text = %q", got)
	}
	r.addSecrets("abcd1234")
	if len(r.pending) == 0 {
		t.Fatal("a secret added after the Replacer was built rebuilt it at once")
	}
	if got := r.text("x cd12 y"); got != "x "+Redacted+" y" || len(r.pending) == 0 {
		t.Errorf("text = %q, pending %d: a text without the new secret is redacted as it stands, the new one left pending", got, len(r.pending))
	}
	if got := r.text("x abcd1234 y"); got != "x "+Redacted+" y" {
		t.Errorf("text = %q: the new secret, which holds a known one, is redacted whole", got)
	}
	if len(r.pending) != 0 {
		t.Errorf("%d pending after a text held one: the Replacer was not rebuilt", len(r.pending))
	}
}
