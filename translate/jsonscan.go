package translate

import (
	"bytes"
	"encoding/json"
	"iter"
	"unicode/utf8"
)

// This file finds top-level members of a JSON object without decoding the whole
// document, so that a request whose only change is its "model" is rewritten with one
// copy instead of a decode and re-encode. The input must already be valid JSON (the
// router stage decodes every body before it is routed).

// topLevelValue returns the byte span [start, end) of the value of key in the top-level
// object of doc. When key appears more than once the last one counts, as in
// encoding/json and in the providers' parsers.
func topLevelValue(doc []byte, key string) (start, end int, ok bool) {
	spans := topLevelValues(doc, key, nil)
	if len(spans) == 0 {
		return 0, 0, false
	}
	last := spans[len(spans)-1]
	return last[0], last[1], true
}

// topLevelValues appends to spans the [start, end) of every value of key in the
// top-level object of doc.
func topLevelValues(doc []byte, key string, spans [][2]int) [][2]int {
	for k, v := range topLevelMembers(doc) {
		if len(k) == len(key)+2 && string(k[1:len(k)-1]) == key {
			spans = append(spans, v)
		}
	}
	return spans
}

// topLevelMembers yields each member of the top-level object of doc: its name as it is
// written (quotes and escapes included) and its value's span [start, end).
func topLevelMembers(doc []byte) iter.Seq2[[]byte, [2]int] {
	return func(yield func([]byte, [2]int) bool) {
		i := skipSpace(doc, 0)
		if i >= len(doc) || doc[i] != '{' {
			return
		}
		i++
		for {
			i = skipSpace(doc, i)
			if i >= len(doc) || doc[i] == '}' {
				return
			}
			if doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
			keyStart := i
			keyEnd := skipValue(doc, i)
			i = skipSpace(doc, keyEnd)
			if i >= len(doc) || doc[i] != ':' || keyEnd-keyStart < 2 {
				return
			}
			valStart := skipSpace(doc, i+1)
			valEnd := skipValue(doc, valStart)
			if valEnd <= valStart || !yield(doc[keyStart:keyEnd], [2]int{valStart, valEnd}) {
				return
			}
			i = valEnd
		}
	}
}

// memberName reads a member name as topLevelMembers yields it (a valid JSON string),
// as encoding/json does: escapes read, invalid UTF-8 replaced.
func memberName(key []byte) string {
	if bytes.IndexByte(key, '\\') < 0 && utf8.Valid(key) {
		return string(key[1 : len(key)-1])
	}
	var name string
	json.Unmarshal(key, &name) // a valid JSON string: cannot fail
	return name
}

// topLevelFields returns the members of body, a JSON object, by name, as a decode into
// map[string]json.RawMessage would (the last of a repeated name wins), but with the
// values sharing body's bytes instead of copies. Its error is that decode's.
func topLevelFields(body []byte) (map[string]json.RawMessage, error) {
	if i := skipSpace(body, 0); !json.Valid(body) || body[i] != '{' {
		var fields map[string]json.RawMessage
		err := json.Unmarshal(body, &fields) // says why, or reads a null
		return fields, err
	}
	fields := map[string]json.RawMessage{}
	for key, v := range topLevelMembers(body) {
		fields[memberName(key)] = body[v[0]:v[1]:v[1]]
	}
	return fields, nil
}

// SetMember returns doc, a valid JSON object, with its top-level member key set to the
// JSON value v: every duplicate of key is replaced, and a missing key is added first. doc
// is not modified. key is written as it is, so it must be a name JSON does not escape;
// v must be valid JSON. The router stage uses it to ask OpenAI-compatible providers for
// stream usage without decoding the whole body.
func SetMember(doc []byte, key string, v []byte) []byte { return setTopLevel(doc, key, v) }

// setTopLevel returns doc with the top-level member key set to the JSON value v. Every
// occurrence is replaced: a body with the key twice must not let a provider read a value
// the router never saw. A missing key is added first.
func setTopLevel(doc []byte, key string, v []byte) []byte {
	var buf [2][2]int
	spans := topLevelValues(doc, key, buf[:0])
	if len(spans) > 0 {
		out := make([]byte, 0, len(doc)+len(spans)*len(v))
		prev := 0
		for _, sp := range spans {
			out = append(out, doc[prev:sp[0]]...)
			out = append(out, v...)
			prev = sp[1]
		}
		return append(out, doc[prev:]...)
	}
	i := skipSpace(doc, 0) + 1 // just past '{'
	out := make([]byte, 0, len(doc)+len(key)+len(v)+4)
	out = append(out, doc[:i]...)
	out = append(out, '"')
	out = append(out, key...)
	out = append(out, '"', ':')
	out = append(out, v...)
	if j := skipSpace(doc, i); j < len(doc) && doc[j] != '}' {
		out = append(out, ',')
	}
	return append(out, doc[i:]...)
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at i.
func skipValue(doc []byte, i int) int {
	if i >= len(doc) {
		return i
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for i < len(doc) {
			switch doc[i] {
			case '"':
				i = skipString(doc, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(doc) && doc[i] != ',' && doc[i] != '}' && doc[i] != ']' &&
			doc[i] != ' ' && doc[i] != '\n' && doc[i] != '\r' && doc[i] != '\t' {
			i++
		}
		return i
	}
}

// skipString returns the index just past the string starting at doc[i] == '"'.
func skipString(doc []byte, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}
