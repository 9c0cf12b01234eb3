package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// checkMembers refuses the member names of a JSON body that encoding/json
// would let by: one that matches a field only when case is ignored
// ("Items" for "items"), and one given twice in an object, of which it
// keeps the last without a word: {"key":"a","value":"1","key":"b"} wrote
// b alone, and a client that sent it meant a. into is what the body
// decodes into; only its structs and slices are looked into, and what
// decodes itself (json.RawMessage, an UnmarshalJSON) is left to that.
//
// body must be valid JSON. It is read in one pass over its bytes: with
// encoding/json's tokens the check cost half as much as the decoding.
func checkMembers(body []byte, into any) error {
	m := memberScan{doc: body}
	return m.value(reflect.TypeOf(into))
}

type memberScan struct {
	doc  []byte
	i    int
	path []step // where the value being read sits, for an error
}

// step is a member's name, or nil and an array element's index.
type step struct {
	name  []byte
	index int
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// value reads the value at i, which decodes into t.
func (m *memberScan) value(t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m.space()
	container := t.Kind() == reflect.Struct || t.Kind() == reflect.Slice
	if !container || decodesItself(t) || m.i == len(m.doc) {
		m.skip()
		return nil
	}
	switch c := m.doc[m.i]; {
	case c == '[' && t.Kind() == reflect.Slice:
		m.i++
		for n := 0; m.more(']'); n++ {
			if err := m.inside(step{index: n}, t.Elem()); err != nil {
				return err
			}
		}
	case c == '{' && t.Kind() == reflect.Struct:
		m.i++
		fields := fieldsOf(t)
		var names [8][]byte
		seen := names[:0] // a struct has few fields, so an object that fills one is short
		for m.more('}') {
			name := m.name()
			for _, s := range seen {
				if bytes.Equal(s, name) {
					return invalidParam("Invalid JSON body: %s names member %q twice", m.where(), name)
				}
			}
			seen = append(seen, name)
			field, ok := fields[string(name)]
			if !ok {
				return invalidParam("Invalid JSON body: unknown member %q", name)
			}
			m.space()
			m.i++ // ':'
			if err := m.inside(step{name: name}, field); err != nil {
				return err
			}
		}
	default:
		m.skip() // not the container t is: the decoding says so
	}
	return nil
}

func (m *memberScan) inside(s step, t reflect.Type) error {
	m.path = append(m.path, s)
	err := m.value(t)
	m.path = m.path[:len(m.path)-1]
	return err
}

// where names the value being read as kvd's errors do: items[3].
func (m *memberScan) where() string {
	if len(m.path) == 0 {
		return "the body"
	}
	var b strings.Builder
	for _, s := range m.path {
		switch {
		case s.name == nil:
			fmt.Fprintf(&b, "[%d]", s.index)
		case b.Len() > 0:
			b.WriteString("." + string(s.name))
		default:
			b.Write(s.name)
		}
	}
	return b.String()
}

// more steps past a comma and reports whether another element or member
// follows before closer, stepping past closer when none does.
func (m *memberScan) more(closer byte) bool {
	m.space()
	if m.i < len(m.doc) && m.doc[m.i] == ',' {
		m.i++
		m.space()
	}
	if m.i < len(m.doc) && m.doc[m.i] == closer {
		m.i++
		return false
	}
	return m.i < len(m.doc)
}

// name reads a member name, unescaped as encoding/json matches it.
func (m *memberScan) name() []byte {
	start := m.i
	m.i = m.stringEnd() + 1
	raw := m.doc[start:m.i]
	if name, ok := jsonString(raw); ok {
		return name
	}
	return raw[1 : len(raw)-1]
}

// skip steps over one value of any kind.
func (m *memberScan) skip() {
	m.space()
	for depth := 0; m.i < len(m.doc); {
		switch m.doc[m.i] {
		case '"':
			m.i = m.stringEnd() + 1
		case '{', '[':
			depth++
			m.i++
		case '}', ']':
			depth--
			m.i++
		case ',', ':', ' ', '\t', '\r', '\n':
			m.i++
		default: // a number or a literal
			for m.i < len(m.doc) && strings.IndexByte(",:}] \t\r\n", m.doc[m.i]) < 0 {
				m.i++
			}
		}
		if depth == 0 {
			return
		}
	}
}

// stringEnd is where the string whose opening quote is at i ends: its
// closing quote.
func (m *memberScan) stringEnd() int {
	for j := m.i + 1; j < len(m.doc); j++ {
		switch m.doc[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(m.doc)
}

func (m *memberScan) space() {
	for m.i < len(m.doc) && strings.IndexByte(" \t\r\n", m.doc[m.i]) >= 0 {
		m.i++
	}
}

var decodesItselfByType sync.Map // reflect.Type → bool

// decodesItself reports whether t has an UnmarshalJSON (json.RawMessage
// does): asked of each value a batch body holds, so remembered.
func decodesItself(t reflect.Type) bool {
	if v, ok := decodesItselfByType.Load(t); ok {
		return v.(bool)
	}
	v := reflect.PointerTo(t).Implements(unmarshaler)
	decodesItselfByType.Store(t, v)
	return v
}

var fieldsByType sync.Map // reflect.Type → map[string]reflect.Type

// fieldsOf maps the exact JSON names of a struct's fields to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if fields, ok := fieldsByType.Load(t); ok {
		return fields.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldsByType.Store(t, fields)
	return fields
}
