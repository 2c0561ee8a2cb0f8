package configs

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeOf(time.Duration(0))

// EnvVars lists every environment variable that overrides a field, in field order: VIGIL_ plus
// the field's YAML path in upper case with dots as underscores (database.url → VIGIL_DATABASE_URL).
// A list is given comma-separated; lists of structs (cameras) have no variable.
func EnvVars() []string {
	var names []string
	walk(reflect.ValueOf(&Config{}).Elem(), "VIGIL", func(name string, _ reflect.Value) {
		names = append(names, name)
	})
	return names
}

// applyEnv sets each field whose variable lookup finds, and reports every malformed value.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	walk(reflect.ValueOf(cfg).Elem(), "VIGIL", func(name string, field reflect.Value) {
		raw, ok := lookup(name)
		if !ok {
			return
		}
		if err := setField(field, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, raw, err))
		}
	})
	return errors.Join(errs...)
}

// walk calls leaf for every non-struct field, naming it by its YAML path.
func walk(v reflect.Value, prefix string, leaf func(name string, field reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		name := prefix + "_" + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			walk(f, name, leaf)
			continue
		}
		if f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct {
			// Lists of structs (cameras) do not fit in a variable: they are configured in YAML or,
			// for cameras, through the API.
			continue
		}
		leaf(name, f)
	}
}

func setField(f reflect.Value, raw string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return errors.New("not an integer")
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return errors.New("not a number")
		}
		f.SetFloat(x)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list of %s", f.Type().Elem().Kind())
		}
		var items []string
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items))
	case reflect.Map:
		// name=value pairs, comma-separated: VIGIL_PIPELINE_DETECT_CLASS_CONFIDENCE=person=0.5,car=0.4
		if f.Type().Key().Kind() != reflect.String || f.Type().Elem().Kind() != reflect.Float64 {
			return fmt.Errorf("unsupported map of %s to %s", f.Type().Key().Kind(), f.Type().Elem().Kind())
		}
		m := reflect.MakeMap(f.Type())
		for _, pair := range strings.Split(raw, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if !ok || strings.TrimSpace(k) == "" || err != nil {
				return fmt.Errorf("%q is not name=number", pair)
			}
			m.SetMapIndex(reflect.ValueOf(strings.TrimSpace(k)), reflect.ValueOf(x))
		}
		f.Set(m)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("not a boolean")
		}
		f.SetBool(b)
	default:
		// A new field kind must be taught here; the env test walks every field and catches it.
		return fmt.Errorf("unsupported field kind %s", f.Kind())
	}
	return nil
}
