package extproc

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// requestFields are the only members of a request body the router stage reads.
type requestFields struct {
	Model  string
	Stream bool
}

// parseRequest checks that body is valid JSON and reads its top-level "model" and
// "stream". It validates with json.Valid and then walks only the top-level object,
// skipping every other member's bytes, which is about twice as fast as decoding into a
// struct (BenchmarkParseRequest): the messages array is most of a body, and a decode scans
// it twice. Member names match exactly, as OpenAI's API does; the last duplicate wins, as
// in encoding/json.
func parseRequest(body []byte) (requestFields, error) {
	var f requestFields
	if !json.Valid(body) {
		// Slow path, errors only: let encoding/json say where the syntax breaks.
		var v struct{}
		return f, bodyError(json.Unmarshal(body, &v))
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return f, fail(errInvalidRequest, "", "request body must be a JSON object, not %s", kind(body[i]))
	}
	i++
	for {
		i = skipSpace(body, i)
		if body[i] == '}' {
			return f, nil
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		keyEnd := skipValue(body, i)
		key := body[i:keyEnd]
		i = skipSpace(body, keyEnd) + 1 // past ':'
		i = skipSpace(body, i)
		valEnd := skipValue(body, i)
		val := body[i:valEnd]
		i = valEnd
		switch {
		case keyIs(key, "model"):
			if val[0] != '"' {
				if string(val) == "null" {
					f.Model = "" // as if absent, like encoding/json
					continue
				}
				return f, fail(errInvalidRequest, "model", `"model" must be a string, not %s`, kind(val[0]))
			}
			f.Model = unquote(val)
		case keyIs(key, "stream"):
			switch string(val) {
			case "true":
				f.Stream = true
			case "false", "null":
				f.Stream = false
			default:
				return f, fail(errInvalidRequest, "stream", `"stream" must be a boolean, not %s`, kind(val[0]))
			}
		}
	}
}

// keyIs reports whether the string token key is name, without allocating for the
// common, unescaped case.
func keyIs(key []byte, name string) bool {
	inner := key[1 : len(key)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == name
	}
	return unquote(key) == name
}

// unquote returns the text of a valid JSON string token.
func unquote(tok []byte) string {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	_ = json.Unmarshal(tok, &s) // cannot fail: tok is a valid string token
	return s
}

// kind names the JSON type of the value starting with c, as encoding/json's errors do.
func kind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\n' || doc[i] == '\r' || doc[i] == '\t') {
		i++
	}
	return i
}

// skipValue returns the index just past the value starting at doc[i], which must be
// valid JSON.
func skipValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for ; i < len(doc); i++ {
			switch doc[i] {
			case '"':
				i = skipString(doc, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(doc) && doc[i] != ',' && doc[i] != '}' && doc[i] != ']' &&
		doc[i] != ' ' && doc[i] != '\n' && doc[i] != '\r' && doc[i] != '\t' {
		i++
	}
	return i
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
