package knobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// LoadFile reads a config file: a JSON object mapping knob paths to values,
// flat ({"dataplane/gso": false}), nested ({"dataplane": {"gso": false}}) or
// both. A value is a JSON string in the knob's text form, a number for an int
// knob, a bool for a bool knob, or an array of numbers (cpulist) or strings
// (ips). Unknown paths, wrong types, a knob given twice and invalid values are
// errors, all reported at once, and then nothing is changed. Knobs set by a flag
// keep the flag's value, so flags beat the file whichever is read first.
func (t *Table) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("knobs: config file: %w", err)
	}
	return t.LoadJSON(path, data)
}

// LoadJSON is LoadFile for a configuration already read; name is what its
// errors call it.
func (t *Table) LoadJSON(name string, data []byte) error {
	if err := t.load(data); err != nil {
		return fmt.Errorf("knobs: config file %s: %w", name, err)
	}
	return nil
}

// fileEntry is one knob set in the file, with the JSON type it was written as.
type fileEntry struct {
	path, text string
	json       string // "string", "bool", "number", "array of numbers", "array of strings", "empty array"
}

// typeOK says whether a JSON type may set a knob of kind k.
func (fe fileEntry) typeOK(k Kind) bool {
	switch fe.json {
	case "string":
		return true
	case "bool":
		return k == Bool
	case "number":
		return k == Int
	case "array of numbers":
		return k == CPUList
	case "array of strings":
		return k == IPs
	case "empty array":
		return k == CPUList || k == IPs
	}
	return false
}

func (t *Table) load(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var entries []fileEntry
	tok, err := dec.Token()
	if err == nil && tok != json.Delim('{') {
		err = errors.New("the file must hold one JSON object")
	}
	if err == nil {
		err = walkObject(dec, "", &entries)
	}
	if err == nil {
		if _, eof := dec.Token(); eof != io.EOF {
			err = errors.New("data after the top-level object")
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", lineCol(data, dec.InputOffset()), err)
	}
	var errs []error
	seen := make(map[string]bool, len(entries))
	for _, fe := range entries {
		e, ok := t.byPath[fe.path]
		switch {
		case !ok:
			errs = append(errs, &Error{Path: fe.path, Err: ErrUnknown})
		case seen[fe.path]:
			errs = append(errs, fmt.Errorf("knob %s: given twice", fe.path))
		case !fe.typeOK(e.knob.Kind):
			errs = append(errs, fmt.Errorf("knob %s: wrong type: a JSON %s for a %s knob (a string in the knob's text form always works)",
				fe.path, fe.json, e.knob.Kind))
		default:
			if _, err := e.knob.Parse(fe.text); err != nil {
				errs = append(errs, &Error{Path: fe.path, Value: fe.text, Err: err})
			}
		}
		seen[fe.path] = true
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	slices.SortFunc(entries, func(a, b fileEntry) int { return strings.Compare(a.path, b.path) })
	for _, fe := range entries {
		if t.byPath[fe.path].cur.Load().src == FromFlag {
			continue
		}
		if err := t.set(fe.path, fe.text, FromFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walkObject reads the members of an object whose '{' was read, down to its '}'.
// Nested objects extend the path with their key.
func walkObject(dec *json.Decoder, prefix string, out *[]fileEntry) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		path := tok.(string) // a member starts with its key, always a string
		if prefix != "" {
			path = prefix + "/" + path
		}
		if tok, err = dec.Token(); err != nil {
			return err
		}
		fe := fileEntry{path: path}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' {
				if err := walkObject(dec, path, out); err != nil {
					return err
				}
				continue
			}
			if fe.text, fe.json, err = walkArray(dec, path); err != nil {
				return err
			}
		case string:
			fe.text, fe.json = v, "string"
		case bool:
			fe.text, fe.json = strconv.FormatBool(v), "bool"
		case json.Number:
			fe.text, fe.json = v.String(), "number"
		case nil:
			return fmt.Errorf("knob %s: null is not a value (leave the knob out for its default)", path)
		}
		*out = append(*out, fe)
	}
	_, err := dec.Token() // '}'
	return err
}

// walkArray reads an array whose '[' was read: numbers (a cpulist) or strings
// (ips), joined by commas.
func walkArray(dec *json.Decoder, path string) (text, typ string, err error) {
	var parts []string
	typ = "empty array"
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", err
		}
		item := "array of strings"
		switch v := tok.(type) {
		case string:
			parts = append(parts, v)
		case json.Number:
			parts, item = append(parts, v.String()), "array of numbers"
		default:
			return "", "", fmt.Errorf("knob %s: an array holds only numbers (cpulist) or only strings (ips)", path)
		}
		if typ != "empty array" && typ != item {
			return "", "", fmt.Errorf("knob %s: an array mixes numbers and strings", path)
		}
		typ = item
	}
	_, err = dec.Token() // ']'
	return strings.Join(parts, ","), typ, err
}

// lineCol turns a byte offset into "line L, column C" for error messages.
func lineCol(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
