package paginate

import (
	"errors"
	"fmt"

	"github.com/ferry-etl/ferry/engine/spec"
)

// Sentinel errors a caller may branch on.
var (
	ErrNoProgress = errors.New("pagination made no progress: the next token repeats an earlier one")
	ErrPageCap    = errors.New("pagination reached max_pages")
)

// DefaultMaxPages bounds a chain whose spec sets no max_pages.
const DefaultMaxPages = 10000

// guard holds the checks every kind shares, so no kind can loop forever:
// a position (token or URL) must not repeat, and a chain has at most
// maxPages pages.
type guard struct {
	seen     map[string]bool
	maxPages int
}

func newGuard(cfg *spec.Paginate) guard {
	g := guard{seen: map[string]bool{}, maxPages: DefaultMaxPages}
	if cfg.MaxPages.Set {
		g.maxPages = cfg.MaxPages.V
	}
	return g
}

// check passes a chain on to the page after page (1-based): its position
// mark must be new, and page must not be the last one allowed.
func (g *guard) check(mark string, page int) error {
	if mark != "" {
		if g.seen[mark] {
			return ErrNoProgress
		}
		g.seen[mark] = true
	}
	if page >= g.maxPages {
		return fmt.Errorf("%w (%d pages)", ErrPageCap, g.maxPages)
	}
	return nil
}

// remember records the mark of a restored position.
func (g *guard) remember(mark string) {
	if mark != "" {
		g.seen[mark] = true
	}
}
