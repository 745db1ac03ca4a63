package table

import "testing"

// TestPGNumericExponent: PostgreSQL's numeric refuses an exponent of
// INT_MAX/2 or more either way ("value overflows numeric format", checked
// on PostgreSQL 15), even on a zero, whose digits fit: such a value must
// not fit DECIMAL, or it fails its whole batch.
func TestPGNumericExponent(t *testing.T) {
	for lit, want := range map[string]bool{
		"0e1073741822":  true,
		"-0e99999":      true,
		"1e131071":      true,
		"0e2000000000":  false,
		"0e1073741823":  false,
		"0e-1073741823": false,
		"1e-16384":      false,
	} {
		if got := pgNumeric(lit); got != want {
			t.Errorf("pgNumeric(%q) = %v, want %v", lit, got, want)
		}
	}
}
