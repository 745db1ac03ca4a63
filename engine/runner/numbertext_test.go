package runner

import "testing"

// TestNumberText: a number key is written by its value, so the forms the
// table stores as one row are one key to the duplicate check.
func TestNumberText(t *testing.T) {
	for in, want := range map[string]string{
		"1": "1", "1.0": "1", "1e0": "1", "10e-1": "1", "-0": "0", "0.0": "0",
		"1.50": "1.5", "15e-1": "1.5", "0.001": "0.001", "1e-3": "0.001",
		"-2.5E+2": "-250", "1e+21": "1000000000000000000000", "100": "100",
		"1e400": "1e400", "1.5e-50": "1.5e-50",
	} {
		if got := numberText(in); got != want {
			t.Errorf("numberText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNumberValue: in a column declared a number type, a long number is
// one key in every form too (numberText keeps such a one's text).
func TestNumberValue(t *testing.T) {
	for in, want := range map[string]string{
		"1e50": "1e50", "10e49": "1e50", "100000000000000000000000000000000000000000000000000": "1e50",
		"-1.50e-60": "-15e-61", "0.15e-59": "15e-61", "2.0": "2", "1e400": "1e400",
	} {
		if got := numberValue(in); got != want {
			t.Errorf("numberValue(%q) = %q, want %q", in, got, want)
		}
	}
}
