package persistence

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The byte paths of the built-in transcodings are optimisations of the
// string paths: they must write and read exactly what those do.

func TestAppendDecimalWritesWhatEncodeDecimalWrites(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "200.00", "-0.50", "0.001", "-0.000", "1.5e3", "123456789012345", "1234567890123456.78",
		"-99999999999999.9", "12e40", "0.0000000000000000000000000000000000000000000000000000000000000000001", "7.000000000000000000001"} {
		d := decimal.RequireFromString(s)
		want, _ := encodeDecimal(d)
		if got := string(appendDecimal([]byte("x"), d)); got != "x"+want {
			t.Errorf("%s: appendDecimal wrote %q, encodeDecimal %q", s, got[1:], want)
		}
	}
}

func TestParseDecimalReadsWhatNewFromStringReads(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "200.00", "-0.50", "007", "0.001", "15e2", "1.", ".5", "-", "", "+5", "1.2.3", "abc",
		"123456789012345678", "1234567890123456789", "-12345678901234567.8"} {
		want, wantErr := decimal.NewFromString(s)
		got, err := parseDecimal([]byte(s))
		if (err != nil) != (wantErr != nil) || err == nil && (got.String() != want.String() || got.Exponent() != want.Exponent()) {
			t.Errorf("%q: parseDecimal gave %v (exponent %d, %v), NewFromString %v (exponent %d, %v)", s, got, got.Exponent(), err, want, want.Exponent(), wantErr)
		}
	}
}

func TestParseTimeReadsWhatDecodeTimeReads(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range []time.Time{time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 0, paris),
		time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)), time.Date(2024, 1, 2, 3, 4, 5, 6, time.Local)} {
		s, _ := encodeTime(tm)
		if got := string(appendTime(nil, tm)); got != s {
			t.Errorf("appendTime wrote %q, encodeTime %q", got, s)
		}
	}
	for _, s := range []string{"2024-01-02T03:04:05.000000006Z", "2024-01-02T03:04:05+01:00", "2024-01-02T03:04:05+00:00",
		"2024-01-02T03:04:05+01:00[Europe/Paris]", "2024-01-02T03:04:05Z[Local]", "2024-1-02T03:04:05Z", "not a time", ""} {
		want, wantErr := decodeTime(s)
		got, err := parseTime([]byte(s))
		if (err != nil) != (wantErr != nil) || err == nil && (!got.Equal(want) || got.Location().String() != want.Location().String()) {
			t.Errorf("%q: parseTime gave %v (%v), decodeTime %v (%v)", s, got, err, want, wantErr)
		}
	}
}

func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"200.00", "-0.50", "15e2", "1."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := decimal.NewFromString(s)
		got, err := parseDecimal([]byte(s))
		// Coefficients and exponents, not strings: "1e88888880" is short,
		// its String is not.
		if (err != nil) != (wantErr != nil) || err == nil && (got.Coefficient().Cmp(want.Coefficient()) != 0 || got.Exponent() != want.Exponent()) {
			t.Fatalf("%q: parseDecimal gave %v (exponent %d, %v), NewFromString %v (exponent %d, %v)", s, got, got.Exponent(), err, want, want.Exponent(), wantErr)
		}
		if err == nil {
			back, _ := encodeDecimal(got)
			if string(appendDecimal(nil, got)) != back {
				t.Fatalf("%q: appendDecimal wrote %q, encodeDecimal %q", s, appendDecimal(nil, got), back)
			}
		}
	})
}
