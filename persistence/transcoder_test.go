package persistence_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/persistence"
)

// Date is a value object from a package the user cannot change: it has no
// JSON methods and unexported fields.
type Date struct{ y, m, d int }

func (d Date) String() string {
	return time.Date(d.y, time.Month(d.m), d.d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

func parseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	return Date{t.Year(), int(t.Month()), t.Day()}, err
}

// SimpleValue holds other types that need transcodings.
type SimpleValue struct {
	id   uuid.UUID
	date Date
}

type simpleDict struct {
	ID   uuid.UUID `json:"id"`
	Date Date      `json:"date"`
}

// ComplexValue holds a SimpleValue.
type ComplexValue struct{ value SimpleValue }

var (
	dateAsISO = persistence.NewTranscoding("date_iso",
		func(d Date) (string, error) { return d.String(), nil }, parseDate)
	simpleAsDict = persistence.NewTranscoding("simple_custom_value",
		func(v SimpleValue) (simpleDict, error) { return simpleDict{v.id, v.date}, nil },
		func(d simpleDict) (SimpleValue, error) { return SimpleValue{d.ID, d.Date}, nil })
	complexAsDict = persistence.NewTranscoding("complex_custom_value",
		func(v ComplexValue) (SimpleValue, error) { return v.value, nil },
		func(s SimpleValue) (ComplexValue, error) { return ComplexValue{s}, nil })
)

func mustTranscoder(t *testing.T, ts ...persistence.Transcoding) *persistence.JSONTranscoder {
	t.Helper()
	tc, err := persistence.NewJSONTranscoder(ts...)
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

func roundTrip[T any](t *testing.T, tc persistence.Transcoder, v T) (T, string) {
	t.Helper()
	b, err := tc.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %#v: %v", v, err)
	}
	var out T
	if err := tc.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return out, string(b)
}

func TestTimesKeepTheirZoneAndNanoseconds(t *testing.T) {
	tc := mustTranscoder(t)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"UTC", time.Date(2021, 12, 31, 23, 59, 59, 123456789, time.UTC), `"2021-12-31T23:59:59.123456789Z"`},
		{"a named zone", time.Date(2024, 3, 1, 9, 30, 0, 1, paris), `"2024-03-01T09:30:00.000000001+01:00[Europe/Paris]"`},
		{"a named zone in summer", time.Date(2024, 7, 1, 9, 30, 0, 0, paris), `"2024-07-01T09:30:00+02:00[Europe/Paris]"`},
		{"a fixed zone", time.Date(2024, 7, 1, 9, 30, 0, 0, time.FixedZone("", -5*3600)), `"2024-07-01T09:30:00-05:00"`},
		{"the zero time", time.Time{}, `"0001-01-01T00:00:00Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, enc := roundTrip(t, tc, tt.in)
			if enc != tt.want {
				t.Fatalf("encoded %s, want %s", enc, tt.want)
			}
			if !out.Equal(tt.in) || out.Nanosecond() != tt.in.Nanosecond() {
				t.Fatalf("decoded %v, want %v", out, tt.in)
			}
			_, inOffset := tt.in.Zone()
			_, outOffset := out.Zone()
			if out.Location().String() != tt.in.Location().String() && tt.in.Location().String() != "" || inOffset != outOffset {
				t.Fatalf("decoded zone %v %d, want %v %d", out.Location(), outOffset, tt.in.Location(), inOffset)
			}
		})
	}
}

func TestDecimalsKeepTheirScale(t *testing.T) {
	tc := mustTranscoder(t)
	for _, s := range []string{"1.50", "0.00", "-400.00", "123456789012345678901234567890.123456789", "1e3", "15e2", "0"} {
		d := decimal.RequireFromString(s)
		out, enc := roundTrip(t, tc, d)
		if !out.Equal(d) || out.Exponent() != d.Exponent() {
			t.Fatalf("%s: encoded %s, decoded %s (exponent %d, want %d)", s, enc, out, out.Exponent(), d.Exponent())
		}
	}
	if _, enc := roundTrip(t, tc, decimal.RequireFromString("100.00")); enc != `"100.00"` {
		t.Fatalf("encoded %s", enc)
	}
}

func TestBuiltInTypesRoundTripExactly(t *testing.T) {
	tc := mustTranscoder(t)
	type event struct {
		ID       uuid.UUID
		Amount   decimal.Decimal
		Wait     time.Duration
		At       time.Time
		Tags     []string
		Counts   map[string]int
		Nothing  []int
		NoMap    map[string]string
		Optional *uuid.UUID
		Bytes    []byte
	}
	id := uuid.New()
	in := event{ID: id, Amount: decimal.RequireFromString("10.10"), Wait: 90*time.Minute + 500*time.Millisecond + 3,
		At: time.Date(2020, 2, 29, 12, 0, 0, 5, time.UTC), Tags: []string{}, Counts: map[string]int{"a": 1},
		Optional: &id, Bytes: []byte{0, 1, 2, 255}}
	out, enc := roundTrip(t, tc, in)
	if !reflect.DeepEqual(out.Tags, in.Tags) || out.Nothing != nil || out.NoMap != nil || out.Tags == nil {
		t.Fatalf("nil and empty collections changed: %s", enc)
	}
	if out.ID != in.ID || !out.Amount.Equal(in.Amount) || out.Amount.Exponent() != -2 || out.Wait != in.Wait ||
		out.At != in.At || *out.Optional != id || string(out.Bytes) != string(in.Bytes) || out.Counts["a"] != 1 {
		t.Fatalf("round trip of %s gave %+v", enc, out)
	}
}

func TestCustomTranscodingsNest(t *testing.T) {
	tc := mustTranscoder(t, dateAsISO, simpleAsDict, complexAsDict)
	in := ComplexValue{SimpleValue{uuid.MustParse("b2723fe2-c01a-40d2-875e-a3aac6a09ff5"), Date{2000, 2, 20}}}
	out, enc := roundTrip(t, tc, in)
	if out != in {
		t.Fatalf("decoded %+v from %s", out, enc)
	}
	want := `{"_type_":"complex_custom_value","_data_":{"_type_":"simple_custom_value","_data_":{"id":"b2723fe2-c01a-40d2-875e-a3aac6a09ff5","date":{"_type_":"date_iso","_data_":"2000-02-20"}}}}`
	if enc != want {
		t.Fatalf("encoded %s\nwant    %s", enc, want)
	}
}

func TestANewerTranscodingStillDecodesTheOlderOnesValues(t *testing.T) {
	old := mustTranscoder(t, dateAsISO)
	b, err := old.Marshal(Date{1999, 12, 31})
	if err != nil {
		t.Fatal(err)
	}
	dateAsParts := persistence.NewTranscoding("date_parts",
		func(d Date) ([3]int, error) { return [3]int{d.y, d.m, d.d}, nil },
		func(p [3]int) (Date, error) { return Date{p[0], p[1], p[2]}, nil })
	tc := mustTranscoder(t, dateAsISO, dateAsParts)
	var d Date
	if err := tc.Unmarshal(b, &d); err != nil || d != (Date{1999, 12, 31}) {
		t.Fatalf("old value %s decoded as %+v: %v", b, d, err)
	}
	out, enc := roundTrip(t, tc, Date{2001, 1, 2})
	if enc != `{"_type_":"date_parts","_data_":[2001,1,2]}` || out != (Date{2001, 1, 2}) {
		t.Fatalf("new encoding %s decoded as %+v", enc, out)
	}
	if err := tc.Register(persistence.NewTranscoding("date_iso", func(Date) (int, error) { return 0, nil }, func(int) (Date, error) { return Date{}, nil })); !errors.Is(err, persistence.ErrProgramming) {
		t.Fatalf("a second transcoding named date_iso: %v", err)
	}
}

func TestUnsupportedValuesAreErrors(t *testing.T) {
	tc := mustTranscoder(t)
	if _, err := tc.Marshal(Date{}); err == nil {
		// Date has no exported fields: without a transcoding it would
		// lose its value, so it is refused.
		t.Fatal("marshal a struct without exported fields: no error")
	}
	if _, err := tc.Marshal(make(chan int)); err == nil {
		t.Fatal("marshal a channel: no error")
	}
	var d Date
	if err := mustTranscoder(t, dateAsISO).Unmarshal([]byte(`{"_type_":"no_such","_data_":1}`), &d); err == nil || !strings.Contains(err.Error(), "no_such") {
		t.Fatalf("unknown transcoding name: %v", err)
	}
}

func TestNumbersInInterfacesStayExact(t *testing.T) {
	tc := mustTranscoder(t)
	var m map[string]any
	if err := tc.Unmarshal([]byte(`{"big":9007199254740993,"neg":-3,"f":1.5,"e":1e2}`), &m); err != nil {
		t.Fatal(err)
	}
	if m["big"] != int64(9007199254740993) || m["neg"] != int64(-3) || m["f"] != 1.5 || m["e"] != float64(100) {
		t.Fatalf("decoded %#v", m)
	}
}
