package budget

import "testing"

func TestAmountShowsWhatWasSet(t *testing.T) {
	for _, c := range []struct {
		usd  float64
		want string
	}{
		{500, "500.00"}, {0.5, "0.50"}, {0.04, "0.04"}, {0, "0.00"},
		{0.035, "0.035"}, {0.0045, "0.0045"}, {0.00195, "0.00195"}, {0.00504, "0.00504"},
		{499.1, "499.10"}, {0.1 + 0.2, "0.30"}, {1e-10, "1e-10"},
	} {
		if got := Amount(c.usd); got != c.want {
			t.Errorf("Amount(%v) = %q, want %q", c.usd, got, c.want)
		}
	}
	if got := Dollars(0.035); got != "$0.035" {
		t.Errorf("Dollars(0.035) = %q", got)
	}
}
