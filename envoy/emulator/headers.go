package emulator

import (
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerMap is an ordered multimap with lower-case keys, the shape of Envoy's HeaderMapImpl:
// pseudo-headers (":method", ":path", ...) come first, then regular headers in insertion
// order. Envoy hands this exact order to ext_proc servers and filters, so it is kept.
type headerMap struct {
	entries []headerEntry
}

type headerEntry struct {
	key, value string
}

func newHeaderMap() *headerMap { return &headerMap{} }

// get returns the first value of key.
func (h *headerMap) get(key string) (string, bool) {
	for _, e := range h.entries {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// value returns the first value of key or "".
func (h *headerMap) value(key string) string {
	v, _ := h.get(key)
	return v
}

// values returns every value of key, in order.
func (h *headerMap) values(key string) []string {
	var out []string
	for _, e := range h.entries {
		if e.key == key {
			out = append(out, e.value)
		}
	}
	return out
}

func (h *headerMap) has(key string) bool {
	_, ok := h.get(key)
	return ok
}

// set replaces every value of key with one value, keeping the position of the first one
// (Envoy's setCopy).
func (h *headerMap) set(key, value string) {
	idx := -1
	out := h.entries[:0]
	for _, e := range h.entries {
		if e.key == key {
			if idx >= 0 {
				continue
			}
			idx = len(out)
			e.value = value
		}
		out = append(out, e)
	}
	h.entries = out
	if idx < 0 {
		h.add(key, value)
	}
}

// add appends a value; a new pseudo-header goes after the existing pseudo-headers.
func (h *headerMap) add(key, value string) {
	if strings.HasPrefix(key, ":") {
		i := 0
		for i < len(h.entries) && strings.HasPrefix(h.entries[i].key, ":") {
			i++
		}
		h.entries = append(h.entries, headerEntry{})
		copy(h.entries[i+1:], h.entries[i:])
		h.entries[i] = headerEntry{key, value}
		return
	}
	h.entries = append(h.entries, headerEntry{key, value})
}

// remove deletes every value of key.
func (h *headerMap) remove(key string) {
	out := h.entries[:0]
	for _, e := range h.entries {
		if e.key != key {
			out = append(out, e)
		}
	}
	h.entries = out
}

func (h *headerMap) clone() *headerMap {
	return &headerMap{entries: append([]headerEntry(nil), h.entries...)}
}

// joined returns every value of key joined by ",", as Envoy's header matchers see a
// multi-valued header.
func (h *headerMap) joined(key string) (string, bool) {
	vs := h.values(key)
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ","), true
}

// toProto renders the map the way ext_proc sends it: keys lower-case, values in raw_value.
func (h *headerMap) toProto() *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(h.entries))}
	for _, e := range h.entries {
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// addHTTP copies Go headers in, lower-casing keys.
func (h *headerMap) addHTTP(src http.Header) {
	for k, vs := range src {
		lk := strings.ToLower(k)
		for _, v := range vs {
			h.add(lk, v)
		}
	}
}

// hopByHop are the connection-level headers Envoy's codecs never forward.
var hopByHop = map[string]bool{
	"connection":        true,
	"keep-alive":        true,
	"proxy-connection":  true,
	"transfer-encoding": true,
	"upgrade":           true,
}

// validHeaderName reports whether name is a legal lower-case HTTP field name (or pseudo).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	s := name
	if strings.HasPrefix(s, ":") {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no NUL, CR or LF (Envoy's headerValueIsValid).
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}
