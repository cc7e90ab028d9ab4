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
	// IncludeUsage is stream_options.include_usage: the client wants the usage chunk at
	// the end of its stream.
	IncludeUsage bool
	// StreamOptions is the raw stream_options object (a slice of the body), nil when it
	// is absent or null; the router adds include_usage to it when it asks the provider for
	// usage.
	StreamOptions []byte
	// User is the end user the request is made for (OpenAI's "user"): LiteLLM's customer,
	// whose budget and spend tollgate tracks.
	User string
	// Metadata is the raw "metadata" object (a slice of the body), nil when absent: LiteLLM
	// users tag requests there ("tags"), and the spend record keeps it.
	Metadata []byte
}

// parseRequest checks that body is valid JSON and reads its top-level "model", "stream"
// and "stream_options". It validates with json.Valid and then walks only the top-level
// object, skipping every other member's bytes, which is about twice as fast as decoding
// into a struct (BenchmarkParseRequest): the messages array is most of a body, and a
// decode scans it twice. Member names match exactly, as OpenAI's API does; the last
// duplicate wins, as in encoding/json.
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
	for i++; ; {
		key, val, next, ok := member(body, i)
		if !ok {
			return f, nil
		}
		i = next
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
			v, err := boolean(val, "stream")
			if err != nil {
				return f, err
			}
			f.Stream = v
		case keyIs(key, "metadata"):
			f.Metadata = nil
			switch val[0] {
			case 'n': // null, as if absent
			case '{':
				f.Metadata = val
			default:
				return f, fail(errInvalidRequest, "metadata", `"metadata" must be an object, not %s`, kind(val[0]))
			}
		case keyIs(key, "user"):
			switch val[0] {
			case 'n': // null, as if absent
				f.User = ""
			case '"':
				f.User = unquote(val)
			default:
				return f, fail(errInvalidRequest, "user", `"user" must be a string, not %s`, kind(val[0]))
			}
		case keyIs(key, "stream_options"):
			f.StreamOptions, f.IncludeUsage = nil, false
			switch val[0] {
			case 'n': // null, as if absent
			case '{':
				f.StreamOptions = val
				v, err := includeUsage(val)
				if err != nil {
					return f, err
				}
				f.IncludeUsage = v
			default:
				return f, fail(errInvalidRequest, "stream_options", `"stream_options" must be an object, not %s`, kind(val[0]))
			}
		}
	}
}

// includeUsage reads include_usage from a valid stream_options object.
func includeUsage(obj []byte) (bool, error) {
	use := false
	for i := 1; ; {
		key, val, next, ok := member(obj, i)
		if !ok {
			return use, nil
		}
		i = next
		if keyIs(key, "include_usage") {
			v, err := boolean(val, "stream_options.include_usage")
			if err != nil {
				return false, err
			}
			use = v
		}
	}
}

// boolean reads a JSON boolean member; null is false, as if absent.
func boolean(val []byte, name string) (bool, error) {
	switch string(val) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, fail(errInvalidRequest, name, `"%s" must be a boolean, not %s`, name, kind(val[0]))
}

// member reads the object member at or after doc[i], past a separating comma: its key
// token, its value and the index just past the value. ok is false at the object's
// closing brace. doc must be valid JSON and i inside one of its objects.
func member(doc []byte, i int) (key, val []byte, next int, ok bool) {
	i = skipSpace(doc, i)
	if doc[i] == '}' {
		return nil, nil, i + 1, false
	}
	if doc[i] == ',' {
		i = skipSpace(doc, i+1)
	}
	keyEnd := skipValue(doc, i)
	key = doc[i:keyEnd]
	i = skipSpace(doc, skipSpace(doc, keyEnd)+1) // past ':'
	valEnd := skipValue(doc, i)
	return key, doc[i:valEnd], valEnd, true
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
