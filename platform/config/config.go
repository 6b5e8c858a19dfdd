// Package config loads typed configuration: defaults in the struct, then an optional YAML document, then
// SEAM_* environment overrides, then validation whose messages name the bad key; secrets are masked when the
// configuration is logged.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides configuration.
const EnvPrefix = "SEAM"

// Defaulter is implemented by sections that fill their own defaults before decoding.
type Defaulter interface{ SetDefaults() }

// Validator is implemented by sections that check themselves after decoding; errors name the bad key.
type Validator interface{ Validate() error }

// Decode fills out (a pointer to a struct) from a YAML node (nil for none) and the environment: defaults
// first, then YAML (unknown keys are errors), then variables named prefix_FIELD_SUBFIELD (from yaml tags,
// upper-cased), then Validate. key names the section in error messages (e.g. "modules.billing").
func Decode(node *yaml.Node, out any, prefix, key string, environ []string) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Decode needs a pointer to a struct, got %T", out)
	}
	setDefaults(v)
	if node != nil && node.Kind != 0 {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(node); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		dec := yaml.NewDecoder(&buf)
		dec.KnownFields(true)
		if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w", orRoot(key), err)
		}
	}
	if err := applyEnv(v.Elem(), prefix, envMap(environ)); err != nil {
		return err
	}
	if val, ok := out.(Validator); ok {
		if err := val.Validate(); err != nil {
			return joinKey(key, err)
		}
	}
	return nil
}

// ParseYAML parses a YAML document into a node; empty input gives an empty node.
func ParseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

func orRoot(key string) string {
	if key == "" {
		return "config"
	}
	return key
}

func joinKey(key string, err error) error {
	if key == "" {
		return err
	}
	return fmt.Errorf("%s.%w", key, err)
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix+"_") {
			m[k] = v
		}
	}
	return m
}

// EnvName returns the environment variable that overrides the field at the given yaml path.
func EnvName(prefix string, path ...string) string {
	parts := append([]string{prefix}, path...)
	return strings.ToUpper(strings.Join(parts, "_"))
}

func yamlName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" || !f.IsExported() {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

func setDefaults(v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		if d, ok := v.Interface().(Defaulter); ok {
			d.SetDefaults()
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.CanAddr() && v.Type().Field(i).IsExported() {
			setDefaults(f.Addr())
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, ok := yamlName(sf)
		if !ok {
			continue
		}
		f := v.Field(i)
		envName := EnvName(prefix, name)
		if f.Kind() == reflect.Struct {
			if err := applyEnv(f, envName, env); err != nil {
				return err
			}
			continue
		}
		raw, set := env[envName]
		if !set {
			continue
		}
		if err := setFromString(f, raw); err != nil {
			return fmt.Errorf("%s: %w", envName, err)
		}
	}
	return nil
}

func setFromString(f reflect.Value, raw string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("want a duration like 30s, got %q", raw)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", raw)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want an integer, got %q", raw)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a non-negative integer, got %q", raw)
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a number, got %q", raw)
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// EnvNames lists every environment variable that can override a field of cfg (a struct or a pointer to
// one) under prefix, so a caller can tell a misspelt SEAM_* variable from a real setting.
func EnvNames(cfg any, prefix string) []string {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var names []string
	collectEnvNames(v.Type(), prefix, &names)
	return names
}

func collectEnvNames(t reflect.Type, prefix string, names *[]string) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, ok := yamlName(sf)
		if !ok {
			continue
		}
		envName := EnvName(prefix, name)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Time]() {
			collectEnvNames(sf.Type, envName, names)
			continue
		}
		*names = append(*names, envName)
	}
}

// Masked is what a secret value is logged as.
const Masked = "*****"

// Redacted renders a config struct as a map keyed by yaml names, for logging: fields tagged `secret:"true"`
// are masked, and fields tagged `secret:"url"` keep the URL but mask its password.
func Redacted(cfg any) any {
	return redact(reflect.ValueOf(cfg), "")
}

func redact(v reflect.Value, secret string) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch secret {
	case "true":
		if v.IsZero() {
			return ""
		}
		return Masked
	case "url":
		return maskURL(fmt.Sprint(v.Interface()))
	}
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return v.Interface()
		}
		m := make(map[string]any)
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name, ok := yamlName(t.Field(i))
			if !ok {
				continue
			}
			m[name] = redact(v.Field(i), t.Field(i).Tag.Get("secret"))
		}
		return m
	case reflect.Map:
		m := make(map[string]any)
		for _, k := range v.MapKeys() {
			m[fmt.Sprint(k.Interface())] = redact(v.MapIndex(k), "")
		}
		return m
	default:
		if v.Type() == durationType {
			return v.Interface().(time.Duration).String()
		}
		return v.Interface()
	}
}

func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Masked
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
