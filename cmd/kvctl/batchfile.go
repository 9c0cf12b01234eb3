package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kvd/kvd/client"
	"github.com/kvd/kvd/internal/jsontext"
)

// readBatchFile reads FILE, or stdin when it is absent or "-", with read
// (readKeys or readItems), and closes the file.
func readBatchFile[T any](args []string, stdin io.Reader, read func(io.Reader) (T, error)) (T, error) {
	if len(args) == 0 || args[0] == "-" {
		return read(stdin)
	}
	f, err := os.Open(args[0])
	if err != nil {
		var none T
		return none, usagef("batch file: %v", err)
	}
	defer f.Close()
	return read(f)
}

// readEntries reads a batch file as its entries. One JSON document is
// either {field: [...]} or an array; anything else is a stream of entries,
// one per line (JSONL) or simply one after the other. An entry with a
// string that encoding/json would decode as U+FFFD (jsontext.Check) is
// refused, as kvd refuses it: the key written would not be the file's;
// so is a file with no entry.
func readEntries(r io.Reader, field string) ([]json.RawMessage, error) {
	entries, err := splitEntries(r, field)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 { // the file's mistake, told before kvd is asked (exit 2, not 3)
		return nil, usagef("batch file holds no entries; a batch needs at least one")
	}
	for i, raw := range entries {
		if flaw := jsontext.Check(raw); flaw != nil {
			return nil, usagef("batch file, entry %d: %s (it would be read as U+FFFD)", i+1, flaw)
		}
	}
	return entries, nil
}

func splitEntries(r io.Reader, field string) ([]json.RawMessage, error) {
	dec := json.NewDecoder(r)
	var entries []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, usagef("batch file, entry %d: %v", len(entries)+1, err)
		}
		entries = append(entries, raw)
	}
	if len(entries) != 1 {
		return entries, nil
	}
	doc := entries[0]
	var wrapped map[string]json.RawMessage
	switch {
	case doc[0] == '[':
		entries = nil
		if err := json.Unmarshal(doc, &entries); err != nil {
			return nil, usagef("batch file: %v", err)
		}
	case doc[0] == '{' && json.Unmarshal(doc, &wrapped) == nil && wrapped[field] != nil:
		entries = nil
		if err := json.Unmarshal(wrapped[field], &entries); err != nil {
			return nil, usagef("batch file: %q must be an array: %v", field, err)
		}
	}
	return entries, nil
}

// readKeys reads keys: JSON strings, or objects with a "key".
func readKeys(r io.Reader) ([]string, error) {
	entries, err := readEntries(r, "keys")
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(entries))
	for i, raw := range entries {
		var obj struct {
			Key *string `json:"key"`
		}
		switch {
		case json.Unmarshal(raw, &keys[i]) == nil:
		case json.Unmarshal(raw, &obj) == nil && obj.Key != nil:
			keys[i] = *obj.Key
		default:
			return nil, usagef("batch file, entry %d: want a key as a JSON string, got %s", i+1, raw)
		}
	}
	return keys, nil
}

// fileItem is an item as a batch file holds it.
type fileItem struct {
	Key         *string         `json:"key"`
	Value       json.RawMessage `json:"value"`
	ContentType string          `json:"content_type"`
	TTL         int64           `json:"ttl"`
	Encoding    string          `json:"encoding"`
}

// readItems reads items. A string value is stored as its text (or bytes,
// with "encoding":"base64"); any other JSON value is stored as JSON.
func readItems(r io.Reader) ([]client.Item, error) {
	entries, err := readEntries(r, "items")
	if err != nil {
		return nil, err
	}
	items := make([]client.Item, len(entries))
	for i, raw := range entries {
		if items[i], err = parseItem(raw); err != nil {
			return nil, usagef("batch file, item %d: %v", i+1, err)
		}
	}
	return items, nil
}

func parseItem(raw json.RawMessage) (client.Item, error) {
	var in fileItem
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a typo such as "tll" must not pass silently
	if err := dec.Decode(&in); err != nil {
		return client.Item{}, fmt.Errorf("want {\"key\":K,\"value\":V,...}: %v", err)
	}
	if in.Key == nil || len(in.Value) == 0 {
		return client.Item{}, errors.New(`"key" and "value" are required`)
	}
	ttl, err := seconds(in.TTL)
	if err != nil {
		return client.Item{}, fmt.Errorf(`"ttl": %w`, err)
	}
	item := client.Item{Key: *in.Key, Value: client.Value{ContentType: in.ContentType}, TTL: ttl}
	var decoded any
	json.Unmarshal(in.Value, &decoded) // the decoder above has checked it
	text, isString := decoded.(string)
	switch {
	case !isString: // any other JSON value (null too) is stored as JSON
		var compact bytes.Buffer
		json.Compact(&compact, in.Value)
		item.Value.Data = compact.Bytes()
		if item.Value.ContentType == "" {
			item.Value.ContentType = "application/json"
		}
	case in.Encoding == "base64":
		data, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return client.Item{}, fmt.Errorf(`"value" is not valid base64: %v`, err)
		}
		item.Value.Data = data
	case in.Encoding != "":
		return client.Item{}, errors.New(`"encoding" must be base64 when given`)
	default:
		item.Value.Data = []byte(text)
	}
	return item, nil
}
