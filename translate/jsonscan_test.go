package translate

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSetMember(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"added first", `{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{"empty object", `{}`, `{"stream_options":{"include_usage":true}}`},
		{"empty object with space", ` { } `, ` {"stream_options":{"include_usage":true} } `},
		{"replaced", `{"stream_options":null,"stream":true}`, `{"stream_options":{"include_usage":true},"stream":true}`},
		{"every duplicate replaced", `{"stream_options":{},"x":{"stream_options":1},"stream_options": {"a":1} }`,
			`{"stream_options":{"include_usage":true},"x":{"stream_options":1},"stream_options": {"include_usage":true} }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := []byte(tc.doc)
			got := SetMember(doc, "stream_options", []byte(`{"include_usage":true}`))
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if string(doc) != tc.doc {
				t.Errorf("doc was modified: %s", doc)
			}
		})
	}
}

func TestUnknownMember(t *testing.T) {
	known := map[string]bool{"model": true, "messages": true, "temperature": true}
	for _, tc := range []struct{ body, want string }{
		{`{}`, ""},
		{`{"model":"m","messages":[{"role":"user","content":"hi","refusal":null}]}`, ""},
		{`{"model":"m","Temperature":1}`, ""},                   // names match case-insensitively, as in encoding/json
		{`{"\u006dodel":"m"}`, ""},                              // escapes are read
		{`{"b":1,"a":{"x":[1,{"y":"}\"]"}]},"model":"m"}`, "a"}, // the first unknown in name order
		{` { "model" : "m" , "temprature" : 0.2 } `, "temprature"},
		{`[1]`, ""}, // not an object: the decoder reports that
	} {
		if got := unknownMember([]byte(tc.body), known); got != tc.want {
			t.Errorf("unknownMember(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzTopLevelFields: for any body, topLevelFields reads what a decode into
// map[string]json.RawMessage reads, and unknownMember sees the same names.
func FuzzTopLevelFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[{"c":"}"}],"a":"x"}`, `{"\u0041":null}`, `[1]`, `null`,
		`{"a":1} {}`, `{"a":`, ` {"model" : "m" ,"messages":[{"role":"user","content":"\"hi\\"}]} `,
		"{\"\x8f\":[]}"} { // invalid UTF-8 in a name
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(body, &want)
		got, err := topLevelFields(body)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("topLevelFields(%q) error %v, decode error %v", body, err, wantErr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("topLevelFields(%q) = %d members, decode %d", body, len(got), len(want))
		}
		known := map[string]bool{}
		for name, raw := range want {
			if !bytes.Equal(got[name], raw) {
				t.Fatalf("topLevelFields(%q)[%q] = %s, decode %s", body, name, got[name], raw)
			}
			known[name] = true
		}
		if name := unknownMember(body, known); name != "" {
			t.Fatalf("unknownMember(%q) = %q with every decoded name known", body, name)
		}
	})
}
