package translate

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
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return spans
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) || doc[i] == '}' {
			return spans
		}
		if doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
		keyStart := i
		keyEnd := skipValue(doc, i)
		i = skipSpace(doc, keyEnd)
		if i >= len(doc) || doc[i] != ':' {
			return spans
		}
		valStart := skipSpace(doc, i+1)
		valEnd := skipValue(doc, valStart)
		if valEnd <= valStart {
			return spans
		}
		if keyEnd-keyStart == len(key)+2 && string(doc[keyStart+1:keyEnd-1]) == key {
			spans = append(spans, [2]int{valStart, valEnd})
		}
		i = valEnd
	}
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
