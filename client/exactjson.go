package client

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// marshalExact is json.Marshal that refuses a string which is not valid
// UTF-8. encoding/json sends U+FFFD in its place without a word, so kvd
// would write, delete or read another key than the one named (the key
// "a\xff" would become "a\ufffd", which may exist). It writes such bytes
// as the escape \ufffd, and a real U+FFFD raw, so only a body holding
// that escape is walked to find the string: the usual body costs nothing
// more, and a json.RawMessage spelling out the escape is sent as it is.
func marshalExact(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil || !bytes.Contains(data, []byte(`\ufffd`)) {
		return data, err
	}
	if err := findInexact(reflect.ValueOf(v), ""); err != nil {
		return nil, err
	}
	return data, nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// findInexact walks v as encoding/json encodes it and names the first
// string that is not valid UTF-8; at is where v sits (items[3].key).
// []byte (base64) and a json.Marshaler's output (a json.RawMessage) are
// sent as they are: no U+FFFD is put in, and kvd checks their text.
func findInexact(v reflect.Value, at string) error {
	if !v.IsValid() || (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return nil
	}
	switch m := marshalerOf(v).(type) {
	case json.Marshaler:
		return nil
	case encoding.TextMarshaler:
		text, err := m.MarshalText()
		if err != nil { // json.Marshal succeeded, so it did not fail there
			return nil
		}
		return checkUTF8(string(text), at, "")
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return findInexact(v.Elem(), at)
	case reflect.String:
		return checkUTF8(v.String(), at, "")
	case reflect.Struct:
		return findInexactFields(v, at)
	case reflect.Map:
		return findInexactMap(v, at)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // base64
		}
		fallthrough
	case reflect.Array:
		for i := range v.Len() {
			if err := findInexact(v.Index(i), fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshalerOf is v's MarshalJSON or MarshalText, as encoding/json would
// call it (on a pointer to v when v is addressable), or nil.
func marshalerOf(v reflect.Value) any {
	if !v.CanInterface() {
		return nil
	}
	for _, m := range []reflect.Type{jsonMarshalerType, textMarshalerType} {
		switch {
		case v.Type().Implements(m):
			return v.Interface()
		case v.CanAddr() && reflect.PointerTo(v.Type()).Implements(m):
			return v.Addr().Interface()
		}
	}
	return nil
}

func findInexactFields(v reflect.Value, at string) error {
	for i := range v.NumField() {
		name, promoted, encoded := jsonField(v.Type().Field(i))
		if !encoded {
			continue
		}
		place := at
		if !promoted {
			place = member(at, name)
		}
		if err := findInexact(v.Field(i), place); err != nil {
			return err
		}
	}
	return nil
}

// jsonField is the member name encoding/json gives a struct field,
// whether the field's own fields are promoted into the struct's (an
// embedded struct without a name of its own), and whether it is encoded.
func jsonField(f reflect.StructField) (name string, promoted, encoded bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, false
	}
	name, _, _ = strings.Cut(tag, ",")
	t := f.Type
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case f.Anonymous && name == "" && t.Kind() == reflect.Struct:
		return "", true, true // even when unexported: its exported fields are
	case !f.IsExported():
		return "", false, false
	case name == "":
		name = f.Name
	}
	return name, false, true
}

func findInexactMap(v reflect.Value, at string) error {
	for it := v.MapRange(); it.Next(); {
		key, ok := mapKey(it.Key())
		if !ok {
			continue
		}
		if err := checkUTF8(key, at, "member name "); err != nil {
			return err
		}
		if err := findInexact(it.Value(), member(at, key)); err != nil {
			return err
		}
	}
	return nil
}

// mapKey is a map key as encoding/json writes it, when it is a string
// (numbers are).
func mapKey(k reflect.Value) (string, bool) {
	if k.Kind() == reflect.String {
		return k.String(), true
	}
	if m, ok := marshalerOf(k).(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		return string(text), err == nil
	}
	return "", false
}

func member(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}

// checkUTF8 refuses s unless it is valid UTF-8, naming where it is.
func checkUTF8(s, at, what string) error {
	if utf8.ValidString(s) {
		return nil
	}
	if at != "" {
		at += ": "
	}
	return fmt.Errorf("%s%s%q is not valid UTF-8 (JSON would carry U+FFFD in its place)", at, what, s)
}
