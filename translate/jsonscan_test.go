package translate

import (
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
