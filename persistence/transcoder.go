package persistence

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/shopspring/decimal"
)

// Transcoder turns Go values into bytes and back. [JSONTranscoder] is the
// default; another codec can be used by implementing this interface.
// Decoding into a *map[string]any must work, because upcasters operate on
// that form.
type Transcoder interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Transcoding teaches a [JSONTranscoder] to carry a type that JSON cannot
// carry faithfully by itself: a value object from a package the user cannot
// change, a type whose own JSON form loses information. Build one with
// [NewTranscoding].
type Transcoding interface {
	// Name is recorded with each encoded value, so that a value encoded by
	// an older transcoding of the same type can still be decoded after a
	// newer one is registered. An empty name records the value without a
	// tag; Strata's built-in transcodings do so.
	Name() string
	// Type is the Go type the transcoding carries.
	Type() reflect.Type

	encodeTo(enc *jsontext.Encoder, v any) error
	decodeFrom(dec *jsontext.Decoder) (any, error)
	decodeRaw(raw []byte, opts json.Options) (any, error)
	marshalers(t *JSONTranscoder) *json.Marshalers
	unmarshalers(t *JSONTranscoder) *json.Unmarshalers
}

// NewTranscoding returns a transcoding of T through the representation R,
// which the transcoder encodes in turn (so R may contain other types with
// transcodings):
//
//	persistence.NewTranscoding("date_iso",
//		func(d civil.Date) (string, error) { return d.String(), nil },
//		civil.ParseDate)
//
// With a non-empty name a value is recorded as {"_type_": name, "_data_": R};
// do not give other objects of the model a "_type_" member.
func NewTranscoding[T, R any](name string, encode func(T) (R, error), decode func(R) (T, error)) Transcoding {
	return &transcoding[T, R]{name: name, encode: encode, decode: decode}
}

type transcoding[T, R any] struct {
	name   string
	encode func(T) (R, error)
	decode func(R) (T, error)
	// appendTo and parse, if set, are encode and decode for a string
	// representation without escapes, on bytes: the built-in transcodings
	// have them, so that a time or a decimal costs no string and no
	// interface value on its way through.
	appendTo func(b []byte, v T) []byte
	parse    func(b []byte) (T, error)
}

func (c *transcoding[T, R]) Name() string       { return c.name }
func (c *transcoding[T, R]) Type() reflect.Type { return reflect.TypeFor[T]() }

func (c *transcoding[T, R]) encodeTo(enc *jsontext.Encoder, v any) error {
	return c.encodeValue(enc, v.(T))
}

func (c *transcoding[T, R]) encodeValue(enc *jsontext.Encoder, v T) error {
	if c.appendTo != nil {
		b := append(enc.AvailableBuffer(), '"')
		return enc.WriteValue(append(c.appendTo(b, v), '"'))
	}
	r, err := c.encode(v)
	if err != nil {
		return fmt.Errorf("transcoding %q: %w", c.name, err)
	}
	if c.name == "" {
		if str, ok := any(r).(string); ok {
			// The built-in transcodings are strings: write the token
			// directly rather than through a nested marshal.
			return enc.WriteToken(jsontext.String(str))
		}
		return json.MarshalEncode(enc, r)
	}
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	if err := enc.WriteToken(jsontext.String("_type_")); err != nil {
		return err
	}
	if err := enc.WriteToken(jsontext.String(c.name)); err != nil {
		return err
	}
	if err := enc.WriteToken(jsontext.String("_data_")); err != nil {
		return err
	}
	if err := json.MarshalEncode(enc, r); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndObject)
}

func (c *transcoding[T, R]) decodeFrom(dec *jsontext.Decoder) (any, error) {
	var r R
	if str, ok := any(&r).(*string); ok && dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		*str = tok.String()
	} else if err := json.UnmarshalDecode(dec, &r); err != nil {
		return nil, err
	}
	return c.finish(r)
}

func (c *transcoding[T, R]) decodeRaw(raw []byte, opts json.Options) (any, error) {
	var r R
	if err := json.Unmarshal(raw, &r, opts); err != nil {
		return nil, err
	}
	return c.finish(r)
}

func (c *transcoding[T, R]) finish(r R) (any, error) {
	v, err := c.decode(r)
	if err != nil {
		return nil, fmt.Errorf("transcoding %q: %w", c.name, err)
	}
	return v, nil
}

// marshalers encodes T with the newest transcoding registered for it.
func (c *transcoding[T, R]) marshalers(t *JSONTranscoder) *json.Marshalers {
	return json.MarshalToFunc(func(enc *jsontext.Encoder, v T) error {
		return c.encodeValue(enc, v)
	})
}

// unmarshalers decodes T with whichever of its transcodings recorded it.
func (c *transcoding[T, R]) unmarshalers(t *JSONTranscoder) *json.Unmarshalers {
	typ := reflect.TypeFor[T]()
	return json.UnmarshalFromFunc(func(dec *jsontext.Decoder, p *T) error {
		state := t.state.Load()
		plain := state.plain[typ]
		if dec.PeekKind() == '{' && state.tagged[typ] {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			var tag struct {
				Type string         `json:"_type_"`
				Data jsontext.Value `json:"_data_"`
			}
			if err := json.Unmarshal(raw, &tag); err != nil {
				return err
			}
			var v any
			switch {
			case tag.Type != "":
				tc := state.byName[tag.Type]
				if tc == nil || tc.Type() != typ {
					return fmt.Errorf("no transcoding %q for %v is registered", tag.Type, typ)
				}
				v, err = tc.decodeRaw(tag.Data, state.opts)
			case plain != nil:
				v, err = plain.decodeRaw(raw, state.opts)
			default:
				return fmt.Errorf("object for %v has no transcoding name (_type_)", typ)
			}
			if err != nil {
				return err
			}
			*p = v.(T)
			return nil
		}
		if plain == nil {
			return errors.ErrUnsupported // decode T the default way
		}
		if pc, ok := plain.(*transcoding[T, R]); ok && pc.parse != nil && dec.PeekKind() == '"' {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if s := raw[1 : len(raw)-1]; !slices.Contains(s, '\\') {
				v, err := pc.parse(s)
				if err != nil {
					return fmt.Errorf("transcoding %q: %w", pc.name, err)
				}
				*p = v
				return nil
			}
			var r R
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			v, err := pc.finish(r)
			if err != nil {
				return err
			}
			*p = v.(T)
			return nil
		}
		v, err := plain.decodeFrom(dec)
		if err != nil {
			return err
		}
		*p = v.(T)
		return nil
	})
}

// JSONTranscoder is the default [Transcoder]: JSON, with transcodings for
// the types JSON cannot carry faithfully. Built in are:
//
//   - time.Time: RFC 3339 with nanoseconds, and the zone's name when it has
//     one ("2024-03-01T09:30:00.000000001+01:00[Europe/Paris]", RFC 9557),
//     so that times come back in the same location;
//   - decimal.Decimal (github.com/shopspring/decimal): a string that keeps
//     the scale ("1.50" stays "1.50", not "1.5");
//   - time.Duration: its Go string ("1h30m0.5s").
//
// UUIDs and other types with an exact text form (encoding.TextMarshaler)
// use it. Nil slices and maps stay nil. Inside interface-typed fields and
// the maps that upcasters see, JSON numbers become int64 when they are
// integers that fit and float64 otherwise.
//
// It is safe for concurrent use; register transcodings before use.
type JSONTranscoder struct {
	mu    sync.Mutex
	state atomic.Pointer[transcoderState]
}

type transcoderState struct {
	all    []Transcoding
	byName map[string]Transcoding
	latest map[reflect.Type]Transcoding
	plain  map[reflect.Type]Transcoding // newest untagged transcoding per type
	tagged map[reflect.Type]bool        // whether any tagged transcoding exists
	opts   json.Options
}

// NewJSONTranscoder returns a JSON transcoder with the built-in
// transcodings and the given ones.
func NewJSONTranscoder(transcodings ...Transcoding) (*JSONTranscoder, error) {
	t := &JSONTranscoder{}
	if err := t.Register(append(builtinTranscodings(), transcodings...)...); err != nil {
		return nil, err
	}
	return t, nil
}

// Register adds transcodings. A transcoding registered later for a type
// already transcoded is used to encode it from now on; values recorded
// under the older one's name still decode. Two transcodings may not share
// a name.
func (t *JSONTranscoder) Register(transcodings ...Transcoding) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.state.Load()
	if old == nil {
		old = &transcoderState{}
	}
	all := append([]Transcoding(nil), old.all...)
	byName := cloneMap(old.byName)
	for _, tc := range transcodings {
		if tc == nil {
			return fmt.Errorf("%w: nil transcoding", ErrProgramming)
		}
		if n := tc.Name(); n != "" {
			if _, dup := byName[n]; dup {
				return fmt.Errorf("%w: two transcodings named %q", ErrProgramming, n)
			}
			byName[n] = tc
		}
		all = append(all, tc)
	}
	s := &transcoderState{all: all, byName: byName, latest: map[reflect.Type]Transcoding{},
		plain: map[reflect.Type]Transcoding{}, tagged: map[reflect.Type]bool{}}
	for _, tc := range all {
		s.latest[tc.Type()] = tc
		if tc.Name() == "" {
			s.plain[tc.Type()] = tc
		} else {
			s.tagged[tc.Type()] = true
		}
	}
	var ms []*json.Marshalers
	var us []*json.Unmarshalers
	for _, tc := range s.latest {
		ms = append(ms, tc.marshalers(t))
		us = append(us, tc.unmarshalers(t))
	}
	us = append(us, json.UnmarshalFromFunc(decodeAny))
	s.opts = json.JoinOptions(
		json.FormatNilSliceAsNull(true),
		json.FormatNilMapAsNull(true),
		json.WithMarshalers(json.JoinMarshalers(ms...)),
		json.WithUnmarshalers(json.JoinUnmarshalers(us...)),
	)
	t.state.Store(s)
	return nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (t *JSONTranscoder) options() json.Options {
	s := t.state.Load()
	if s == nil {
		// The zero JSONTranscoder has the built-in transcodings.
		if err := t.Register(builtinTranscodings()...); err != nil {
			panic(err) // the built-ins have distinct names
		}
		s = t.state.Load()
	}
	return s.opts
}

// Marshal encodes v as JSON.
func (t *JSONTranscoder) Marshal(v any) ([]byte, error) {
	return json.Marshal(v, t.options())
}

// Unmarshal decodes JSON data into v, which must be a non-nil pointer.
func (t *JSONTranscoder) Unmarshal(data []byte, v any) error {
	return json.Unmarshal(data, v, t.options())
}

// decodeAny keeps integers exact in interface values: JSON numbers become
// int64 when they are integers that fit, float64 otherwise.
func decodeAny(dec *jsontext.Decoder, p *any) error {
	if dec.PeekKind() != '0' {
		return errors.ErrUnsupported
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	s := tok.String()
	if !strings.ContainsAny(s, ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			*p = n
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return fmt.Errorf("number %s is out of range", s)
	}
	*p = f
	return nil
}

func builtinTranscodings() []Transcoding {
	return []Transcoding{
		&transcoding[time.Time, string]{encode: encodeTime, decode: decodeTime, appendTo: appendTime, parse: parseTime},
		&transcoding[decimal.Decimal, string]{encode: encodeDecimal, decode: decimal.NewFromString, appendTo: appendDecimal, parse: parseDecimal},
		NewTranscoding("", func(d time.Duration) (string, error) { return d.String(), nil }, time.ParseDuration),
	}
}

var locations sync.Map // zone name → *time.Location; loading one reads the zone database

func encodeTime(t time.Time) (string, error) { return string(appendTime(nil, t)), nil }

// appendTime appends t as RFC 3339 with nanoseconds and the zone's name.
func appendTime(b []byte, t time.Time) []byte {
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch name := t.Location().String(); {
	case t.Location() == time.UTC:
	case name == "Local":
		b = append(b, "[Local]"...)
	default:
		// A zone that cannot be loaded by name (a fixed zone) is fully
		// described by the offset.
		if _, err := loadLocation(name); err == nil {
			b = append(append(append(b, '['), name...), ']')
		}
	}
	return b
}

// parseTime is decodeTime on bytes: strict RFC 3339 without a zone's name
// parses without a string; anything else takes decodeTime's way.
func parseTime(b []byte) (time.Time, error) {
	if n := len(b); n > 0 && b[n-1] != ']' {
		var t time.Time
		if t.UnmarshalText(b) == nil {
			if _, offset := t.Zone(); offset == 0 && b[n-1] == 'Z' {
				return t.UTC(), nil
			}
			return t, nil
		}
	}
	return decodeTime(string(b))
}

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || strings.ContainsAny(name, "+-") && !strings.Contains(name, "/") {
		return nil, fmt.Errorf("zone %q has no name", name)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

func decodeTime(s string) (time.Time, error) {
	zone := ""
	if i := strings.IndexByte(s, '['); i >= 0 && strings.HasSuffix(s, "]") {
		s, zone = s[:i], s[i+1:len(s)-1]
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if zone == "" {
		if _, offset := t.Zone(); offset == 0 && strings.HasSuffix(s, "Z") {
			return t.UTC(), nil
		}
		return t, nil
	}
	if zone == "Local" {
		return t.In(time.Local), nil
	}
	loc, err := loadLocation(zone)
	if err != nil {
		return time.Time{}, err
	}
	return t.In(loc), nil
}

// encodeDecimal writes a decimal with its scale: 1.50 as "1.50", 1.5e3 with
// a positive exponent as "15e2".
func encodeDecimal(d decimal.Decimal) (string, error) {
	exp := d.Exponent()
	if exp <= 0 {
		return d.StringFixed(-exp), nil
	}
	return d.Coefficient().String() + "e" + strconv.Itoa(int(exp)), nil
}

// appendDecimal appends what encodeDecimal returns, without allocating
// for a coefficient of up to 15 digits.
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	exp := int(d.Exponent())
	if d.NumDigits() > 15 || exp < -64 {
		s, _ := encodeDecimal(d)
		return append(b, s...)
	}
	c := d.CoefficientInt64()
	if exp > 0 {
		return strconv.AppendInt(append(strconv.AppendInt(b, c, 10), 'e'), int64(exp), 10)
	}
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	var digits [24]byte
	ds := strconv.AppendInt(digits[:0], c, 10)
	scale := -exp
	if len(ds) <= scale { // 0.0ddd: pad with zeros up to the point
		b = append(b, '0')
		if scale > 0 {
			b = append(b, '.')
		}
		for range scale - len(ds) {
			b = append(b, '0')
		}
		return append(b, ds...)
	}
	b = append(b, ds[:len(ds)-scale]...)
	if scale > 0 {
		b = append(append(b, '.'), ds[len(ds)-scale:]...)
	}
	return b
}

// parseDecimal is decimal.NewFromString on bytes, without a string for a
// plain decimal ("-12.50") of up to 18 digits.
func parseDecimal(b []byte) (decimal.Decimal, error) {
	s := b
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var c int64
	digits, point := 0, -1
	for i, ch := range s {
		switch {
		case ch >= '0' && ch <= '9' && digits < 18:
			c = c*10 + int64(ch-'0')
			digits++
			continue
		case ch == '.' && point < 0 && i > 0 && i < len(s)-1:
			point = i
			continue
		}
		return decimal.NewFromString(string(b))
	}
	if digits == 0 {
		return decimal.NewFromString(string(b))
	}
	if neg {
		c = -c
	}
	exp := 0
	if point >= 0 {
		exp = point - (len(s) - 1)
	}
	return decimal.New(c, int32(exp)), nil
}
