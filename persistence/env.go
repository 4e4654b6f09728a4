package persistence

import (
	"fmt"
	"maps"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Env is the configuration an application reads its infrastructure from:
// environment variables by name, looked up first with the application's
// name as prefix. For the application named "Worlds", Lookup("SQLITE_DBNAME")
// returns WORLDS_SQLITE_DBNAME if it is set and SQLITE_DBNAME otherwise, so
// that several applications in one process can use different databases.
//
// Env is immutable; its zero value has no variables.
type Env struct {
	name string
	vars map[string]string
}

// NewEnv returns the environment of the named application made of layers
// of variables, later layers overriding earlier ones: typically the
// settings in code, then the process environment ([ProcessEnv]), then a map
// given to the application's constructor.
func NewEnv(name string, layers ...map[string]string) Env {
	vars := map[string]string{}
	for _, l := range layers {
		maps.Copy(vars, l)
	}
	return Env{name: name, vars: vars}
}

// ProcessEnv returns the process environment as a map.
func ProcessEnv() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Name returns the application name the environment belongs to.
func (e Env) Name() string { return e.name }

// With returns a copy of e with more variables, which override e's.
func (e Env) With(vars map[string]string) Env {
	return NewEnv(e.name, e.vars, vars)
}

// Prefix returns the prefix of the application's own variables: its name in
// upper case with other characters than letters and digits turned into
// underscores, then an underscore ("WORLDS_" for "Worlds").
func (e Env) Prefix() string {
	if e.name == "" {
		return ""
	}
	return EnvPrefix(e.name)
}

// EnvPrefix returns the prefix of the variables of the named application.
func EnvPrefix(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	return b.String()
}

// Lookup returns the value of the variable key, preferring the
// application's prefixed variable, and the name it was found under.
func (e Env) Lookup(key string) (value, name string, ok bool) {
	if p := e.Prefix(); p != "" {
		if v, ok := e.vars[p+key]; ok {
			return v, p + key, true
		}
	}
	v, ok := e.vars[key]
	return v, key, ok
}

// Get returns the value of the variable key, or "".
func (e Env) Get(key string) string {
	v, _, _ := e.Lookup(key)
	return v
}

// String returns the value of key, or def if it is unset or empty.
func (e Env) String(key, def string) string {
	if v := e.Get(key); v != "" {
		return v
	}
	return def
}

// Bool parses the variable key as a truth value: y, yes, t, true, on and 1
// are true; n, no, f, false, off and 0 are false (in any case). Unset or
// empty gives def; anything else is an error wrapping [ErrConfig] that
// names the variable and the value.
func (e Env) Bool(key string, def bool) (bool, error) {
	v, name, ok := e.Lookup(key)
	if !ok || v == "" {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s=%q: %v", ErrConfig, name, v, err)
	}
	return b, nil
}

// ParseBool parses a truth value as [Env.Bool] does.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes", "t", "true", "on", "1":
		return true, nil
	case "n", "no", "f", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a truth value (want one of y, yes, t, true, on, 1, n, no, f, false, off, 0)")
}

// Int parses the variable key as an integer no less than min. Unset or
// empty gives def.
func (e Env) Int(key string, def, min int) (int, error) {
	v, name, ok := e.Lookup(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: not an integer", ErrConfig, name, v)
	}
	if n < min {
		return 0, fmt.Errorf("%w: %s=%q: less than %d", ErrConfig, name, v, min)
	}
	return n, nil
}

// Seconds parses the variable key as a non-negative number of seconds,
// which may have a fraction ("2.5"), or as a Go duration ("1m30s"). Unset
// or empty gives def.
func (e Env) Seconds(key string, def time.Duration) (time.Duration, error) {
	v, name, ok := e.Lookup(key)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%w: %s=%q: not a number of seconds", ErrConfig, name, v)
		}
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("%w: %s=%q: seconds out of range", ErrConfig, name, v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s=%q: not a number of seconds or a duration", ErrConfig, name, v)
	}
	return d, nil
}

// Vars returns a copy of all the variables.
func (e Env) Vars() map[string]string { return maps.Clone(e.vars) }
