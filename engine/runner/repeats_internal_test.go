package runner

import (
	"fmt"
	"testing"
)

// repeats tells an item an earlier page listed from a new one, across
// pages merged into its sorted part (more than compactAt items) and the
// recent ones, with or without room reserved for a reported total; two
// alike items on one page are no repeat.
func TestRepeatsRemembersEveryEarlierPage(t *testing.T) {
	for _, reserve := range []int{0, 20_000, 10} {
		r := newRepeats(0)
		r.expect(reserve)
		item := func(i int) []byte { return fmt.Appendf(nil, `{"id":%d}`, i) }
		const pages, per = 4, 3000 // 12,000 items: merged three times
		for p := range pages {
			r.turn()
			for i := p * per; i < (p+1)*per; i++ {
				if r.again(item(i)) {
					t.Fatalf("reserve %d: item %d, new, taken for a repeat", reserve, i)
				}
			}
		}
		r.turn()
		for _, i := range []int{0, 2999, 6000, 11_999} { // merged, and of the page before
			if !r.again(item(i)) {
				t.Errorf("reserve %d: item %d, listed before, not taken for a repeat", reserve, i)
			}
		}
		first := r.again(item(50_000))
		if second := r.again(item(50_000)); first || second {
			t.Errorf("reserve %d: a new item twice on one page taken for a repeat", reserve)
		}
		if n := r.seen.len(); n != pages*per {
			t.Errorf("reserve %d: %d items remembered, want %d", reserve, n, pages*per)
		}
		if r.seen.fps != nil {
			t.Errorf("reserve %d: fingerprints kept for the bare set of repeats", reserve)
		}
	}
}
