package translate

import (
	"bytes"
	"encoding/json"
	"strings"
)

// geminiSchemaMaxDepth bounds how deeply a schema nests, $ref expansions included; a
// recursive schema reaches it and is refused.
const geminiSchemaMaxDepth = 32

// geminiSchemaConverter reduces a JSON Schema (tool parameters, response_format) to the
// OpenAPI 3.0 subset Gemini's Schema accepts (https://ai.google.dev/api/caching#Schema).
// Gemini refuses a whole request over one key its Schema lacks (`Invalid JSON payload
// received. Unknown name "additionalProperties"`), and clients generate schemas with
// Pydantic or Zod, which write such keys freely. So:
//
//   - "$ref" to "#/$defs/..." or "#/definitions/..." is replaced by the definition; a
//     recursive schema is refused, since Gemini schemas are trees.
//   - A list of types, and an anyOf/oneOf member {"type": "null"}, become "nullable";
//     oneOf becomes anyOf; anyOf, oneOf or allOf of one schema is that schema; allOf of
//     several is refused.
//   - "const" becomes a one-value enum; an enum of anything but strings is dropped.
//   - Formats other than enum, date-time, int32, int64, float and double are dropped:
//     Gemini refuses them.
//   - Empty "properties" are dropped (Gemini refuses an OBJECT with empty properties), and
//     "required" keeps only names "properties" declares.
//   - Every other key Schema lacks is dropped: $schema, $id, $defs, additionalProperties,
//     examples, exclusiveMinimum, multipleOf, prefixItems, ...
//
// With ordering (response schemas), an object also gets propertyOrdering in the client's
// key order, because Gemini otherwise orders its JSON output's keys alphabetically.
type geminiSchemaConverter struct {
	param    string // the parameter the schema is, for errors
	ordering bool
	defs     map[string]json.RawMessage // "#/$defs/Name" -> schema
}

// gemMember is one member of a JSON object, in document order.
type gemMember struct {
	key string
	val json.RawMessage
}

// geminiSchemaKept are the Schema keys copied as they are.
var geminiSchemaKept = map[string]bool{
	"required": true, "title": true, "description": true, "nullable": true, "maxItems": true,
	"minItems": true, "minProperties": true, "maxProperties": true, "minLength": true,
	"maxLength": true, "pattern": true, "example": true, "default": true, "minimum": true,
	"maximum": true, "propertyOrdering": true,
}

// geminiSchemaFormats are the formats Gemini accepts.
var geminiSchemaFormats = map[string]bool{
	`"enum"`: true, `"date-time"`: true, `"int32"`: true, `"int64"`: true, `"float"`: true, `"double"`: true,
}

// root converts a whole schema. hasProperties reports whether its top level declares any
// properties: function parameters without any are left out.
func (c *geminiSchemaConverter) root(raw json.RawMessage) (schema json.RawMessage, hasProperties bool, err error) {
	ms, ok := gemMembers(raw)
	if !ok {
		return nil, false, c.invalid("must be a JSON Schema object")
	}
	for _, m := range ms {
		if m.key != "$defs" && m.key != "definitions" {
			continue
		}
		defs, ok := gemMembers(m.val)
		if !ok {
			return nil, false, c.invalid(m.key + " must be an object of schemas")
		}
		if c.defs == nil {
			c.defs = make(map[string]json.RawMessage, len(defs))
		}
		for _, d := range defs {
			c.defs["#/"+m.key+"/"+d.key] = d.val
		}
	}
	out, err := c.convert(ms, 0)
	if err != nil {
		return nil, false, err
	}
	return gemEncodeMembers(out), gemHas(out, "properties"), nil
}

func (c *geminiSchemaConverter) invalid(why string) error {
	return invalidParam(c.param, "Invalid schema in '%s': %s", c.param, why)
}

// convert converts one schema object's members.
func (c *geminiSchemaConverter) convert(ms []gemMember, depth int) ([]gemMember, error) {
	if depth > geminiSchemaMaxDepth {
		return nil, c.invalid("it refers to itself through $ref, or nests too deeply; a Gemini schema cannot be recursive")
	}
	for _, m := range ms {
		if m.key == "$ref" {
			return c.ref(ms, m.val, depth)
		}
	}
	out := make([]gemMember, 0, len(ms))
	nullable, constant := false, false
	var merged []gemMember // the one schema of an anyOf/oneOf/allOf, merged in at the end
	var order []string
	for _, m := range ms {
		switch m.key {
		case "type":
			tm, null, err := c.types(m.val)
			if err != nil {
				return nil, err
			}
			nullable = nullable || null
			out = append(out, tm...)
		case "anyOf", "oneOf", "allOf":
			var list []json.RawMessage
			if json.Unmarshal(m.val, &list) != nil {
				return nil, c.invalid(m.key + " must be an array of schemas")
			}
			var alts [][]gemMember
			for _, item := range list {
				ims, ok := gemMembers(item)
				if !ok {
					return nil, c.invalid(m.key + " must be an array of schemas")
				}
				if gemIsNullSchema(ims) {
					nullable = true
					continue
				}
				cm, err := c.convert(ims, depth+1)
				if err != nil {
					return nil, err
				}
				alts = append(alts, cm)
			}
			switch {
			case len(alts) == 1:
				merged = alts[0]
			case len(alts) > 1 && m.key == "allOf":
				return nil, c.invalid("allOf of several schemas cannot be expressed in a Gemini schema")
			case len(alts) > 1:
				enc := make([]json.RawMessage, len(alts))
				for i, a := range alts {
					enc[i] = gemEncodeMembers(a)
				}
				out = append(out, gemMember{"anyOf", gemEncodeList(enc)})
			}
		case "const":
			if len(m.val) > 0 && m.val[0] == '"' {
				out = append(out, gemMember{"enum", append(append([]byte{'['}, m.val...), ']')})
				constant = true
			}
		case "enum":
			enum, null, ok := gemStringEnum(m.val)
			nullable = nullable || null
			if ok {
				out = append(out, gemMember{"enum", enum})
			}
		case "properties":
			props, ok := gemMembers(m.val)
			if !ok {
				return nil, c.invalid("properties must be an object of schemas")
			}
			if len(props) == 0 {
				continue
			}
			conv := make([]gemMember, len(props))
			order = make([]string, len(props))
			for i, p := range props {
				pms, ok := gemMembers(p.val)
				if !ok && string(bytes.TrimSpace(p.val)) != "true" {
					return nil, c.invalid("property " + p.key + " is not a schema")
				}
				cm, err := c.convert(pms, depth+1)
				if err != nil {
					return nil, err
				}
				conv[i] = gemMember{p.key, gemEncodeMembers(cm)}
				order[i] = p.key
			}
			out = append(out, gemMember{"properties", gemEncodeMembers(conv)})
		case "items":
			ims, ok := gemMembers(m.val)
			if !ok {
				continue // a tuple's list of schemas, or a boolean schema: not expressible
			}
			cm, err := c.convert(ims, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, gemMember{"items", gemEncodeMembers(cm)})
		case "format":
			if geminiSchemaFormats[string(m.val)] {
				out = append(out, m)
			}
		default:
			if geminiSchemaKept[m.key] {
				out = append(out, m)
			}
		}
	}
	out = gemFilterRequired(out, order)
	if constant && !gemHas(out, "type") {
		out = append(out, gemMember{"type", json.RawMessage(`"string"`)}) // Gemini enums are strings
	}
	for _, m := range merged {
		if !gemHas(out, m.key) {
			out = append(out, m)
		}
	}
	if nullable && !gemHas(out, "nullable") {
		out = append(out, gemMember{"nullable", json.RawMessage("true")})
	}
	if c.ordering && len(order) > 1 && !gemHas(out, "propertyOrdering") {
		b, _ := json.Marshal(order) // strings only: cannot fail
		out = append(out, gemMember{"propertyOrdering", b})
	}
	return out, nil
}

// ref replaces a {"$ref": ...} schema by its definition, keeping a description written
// beside the reference.
func (c *geminiSchemaConverter) ref(ms []gemMember, val json.RawMessage, depth int) ([]gemMember, error) {
	var ref string
	if json.Unmarshal(val, &ref) != nil {
		return nil, c.invalid("$ref must be a string")
	}
	def, ok := c.defs[ref]
	if !ok {
		return nil, c.invalid("$ref " + ref + " does not name a schema in $defs or definitions")
	}
	dms, ok := gemMembers(def)
	if !ok {
		return nil, c.invalid("$ref " + ref + " does not name a schema object")
	}
	out, err := c.convert(dms, depth+1)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.key == "description" && !gemHas(out, "description") {
			out = append(out, m)
		}
	}
	return out, nil
}

// types converts "type": a name is kept; a list (["string", "null"]) becomes one type,
// or anyOf of several, and null reports that "null" was among them.
func (c *geminiSchemaConverter) types(val json.RawMessage) (out []gemMember, null bool, err error) {
	if len(val) == 0 || val[0] != '[' {
		return []gemMember{{"type", val}}, false, nil
	}
	var list []string
	if json.Unmarshal(val, &list) != nil {
		return nil, false, c.invalid("type must be a string or an array of strings")
	}
	kept := list[:0:0]
	for _, t := range list {
		if t == "null" {
			null = true
			continue
		}
		kept = append(kept, t)
	}
	switch len(kept) {
	case 0:
		return nil, null, nil
	case 1:
		b, _ := json.Marshal(kept[0])
		return []gemMember{{"type", b}}, null, nil
	}
	alts := make([]json.RawMessage, len(kept))
	for i, t := range kept {
		b, _ := json.Marshal(t)
		alts[i] = gemEncodeMembers([]gemMember{{"type", b}})
	}
	return []gemMember{{"anyOf", gemEncodeList(alts)}}, null, nil
}

// gemFilterRequired keeps in "required" only the names properties declares (props), and
// drops it when none is left.
func gemFilterRequired(ms []gemMember, props []string) []gemMember {
	for i, m := range ms {
		if m.key != "required" {
			continue
		}
		var names []string
		if json.Unmarshal(m.val, &names) != nil {
			return append(ms[:i], ms[i+1:]...)
		}
		kept := names[:0]
		for _, n := range names {
			for _, p := range props {
				if n == p {
					kept = append(kept, n)
					break
				}
			}
		}
		if len(kept) == 0 {
			return append(ms[:i], ms[i+1:]...)
		}
		b, _ := json.Marshal(kept) // strings only: cannot fail
		ms[i].val = b
		return ms
	}
	return ms
}

// gemStringEnum returns an enum's string values; null says null was one of them (it is
// dropped, and makes the schema nullable). ok is false for an enum of other values.
func gemStringEnum(val json.RawMessage) (enum json.RawMessage, null, ok bool) {
	var list []json.RawMessage
	if json.Unmarshal(val, &list) != nil {
		return nil, false, false
	}
	kept := make([]json.RawMessage, 0, len(list))
	for _, v := range list {
		switch {
		case string(v) == "null":
			null = true
		case len(v) > 0 && v[0] == '"':
			kept = append(kept, v)
		default:
			return nil, null, false
		}
	}
	if len(kept) == 0 {
		return nil, null, false
	}
	return gemEncodeList(kept), null, true
}

// gemIsNullSchema reports whether a schema is exactly {"type": "null"}.
func gemIsNullSchema(ms []gemMember) bool {
	return len(ms) == 1 && ms[0].key == "type" && string(bytes.TrimSpace(ms[0].val)) == `"null"`
}

func gemHas(ms []gemMember, key string) bool {
	for _, m := range ms {
		if m.key == key {
			return true
		}
	}
	return false
}

// gemMembers reads a JSON object's members in document order; ok is false for anything
// but an object. raw must be valid JSON (it was decoded once already), so the scan uses
// the package's JSON skipping helpers (jsonscan.go) instead of a decoder, which costs
// several allocations per member.
func gemMembers(raw json.RawMessage) ([]gemMember, bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	ms := make([]gemMember, 0, 8)
	for i = skipSpace(raw, i+1); i < len(raw) && raw[i] != '}'; i = skipSpace(raw, i) {
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
		if i >= len(raw) || raw[i] != '"' {
			return nil, false
		}
		keyEnd := skipString(raw, i)
		key := string(raw[i+1 : keyEnd-1])
		if strings.IndexByte(key, '\\') >= 0 && json.Unmarshal(raw[i:keyEnd], &key) != nil {
			return nil, false
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		valStart := skipSpace(raw, i+1)
		i = skipValue(raw, valStart)
		if i <= valStart {
			return nil, false
		}
		ms = append(ms, gemMember{key, raw[valStart:i]})
	}
	return ms, i < len(raw)
}

// gemEncodeMembers writes members as a JSON object, in their order.
func gemEncodeMembers(ms []gemMember) json.RawMessage {
	n := 2
	for _, m := range ms {
		n += len(m.key) + len(m.val) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = gemAppendKey(b, m.key)
		b = append(b, ':')
		b = append(b, m.val...)
	}
	return append(b, '}')
}

// gemAppendKey appends key as a JSON string: as it is when nothing in it needs escaping,
// which is every schema keyword and nearly every property name.
func gemAppendKey(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return gemAppendString(b, key)
		}
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"')
}

func gemEncodeList(items []json.RawMessage) json.RawMessage {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}
