package extproc

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		body    string
		want    requestFields
		wantErr string
	}{
		{body: `{"model":"gpt-5.5"}`, want: requestFields{Model: "gpt-5.5"}},
		{body: " {\n\t\"messages\": [{\"role\":\"user\",\"content\":\"{\\\"model\\\":\\\"x\\\"}\"}],\r\n \"model\" : \"a\" , \"stream\" : true } ",
			want: requestFields{Model: "a", Stream: true}},
		{body: `{"metadata":{"model":"nested"},"stream":false}`, want: requestFields{Metadata: []byte(`{"model":"nested"}`)}},
		{body: `{"model":"first","model":"last"}`, want: requestFields{Model: "last"}},
		{body: `{"model":"gpt\u002d5.5","stream":null}`, want: requestFields{Model: "gpt-5.5"}},
		{body: `{"mod\u0065l":"escaped-key"}`, want: requestFields{Model: "escaped-key"}},
		{body: `{"Model":"case matters"}`, want: requestFields{}},
		{body: `{"model":null}`, want: requestFields{}},
		{body: `{}`, want: requestFields{}},
		{body: ``, wantErr: "request body is not valid JSON: unexpected end of JSON input (at byte offset 0)"},
		{body: `{"model":"a",}`, wantErr: "request body is not valid JSON: invalid character '}' looking for beginning of object key string (at byte offset 14)"},
		{body: `{"model":"a"} {}`, wantErr: "request body is not valid JSON: invalid character '{' after top-level value (at byte offset 15)"},
		{body: `"gpt-5.5"`, wantErr: "request body must be a JSON object, not string"},
		{body: `{"model":["a"]}`, wantErr: `"model" must be a string, not array`},
		{body: `{"model":true}`, wantErr: `"model" must be a string, not bool`},
		{body: `{"stream":"yes"}`, wantErr: `"stream" must be a boolean, not string`},
		{body: `{"stream":1}`, wantErr: `"stream" must be a boolean, not number`},
		{body: `{"stream":true,"stream_options":{"include_usage":true}}`,
			want: requestFields{Stream: true, IncludeUsage: true, StreamOptions: []byte(`{"include_usage":true}`)}},
		{body: `{"stream_options": { "x":{"include_usage":false}, "include_usage" : true } }`,
			want: requestFields{IncludeUsage: true, StreamOptions: []byte(`{ "x":{"include_usage":false}, "include_usage" : true }`)}},
		{body: `{"stream_options":{"include_usage":true,"include_usage":null}}`,
			want: requestFields{StreamOptions: []byte(`{"include_usage":true,"include_usage":null}`)}},
		{body: `{"stream_options":{}}`, want: requestFields{StreamOptions: []byte(`{}`)}},
		{body: `{"stream_options":{"include_usage":true},"stream_options":null}`, want: requestFields{}},
		{body: `{"model":"m","user":"customer-42"}`, want: requestFields{Model: "m", User: "customer-42"}},
		{body: `{"user":null}`, want: requestFields{}},
		{body: `{"metadata":{"tags":["batch"]}}`, want: requestFields{Metadata: []byte(`{"tags":["batch"]}`)}},
		{body: `{"metadata":"x"}`, wantErr: `"metadata" must be an object, not string`},
		{body: `{"user":7}`, wantErr: `"user" must be a string, not number`},
		{body: `{"stream_options":[]}`, wantErr: `"stream_options" must be an object, not array`},
		{body: `{"stream_options":{"include_usage":"yes"}}`, wantErr: `"stream_options.include_usage" must be a boolean, not string`},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			got, err := parseRequest([]byte(tc.body))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" && err == nil {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseRequest checks parseRequest against encoding/json: it accepts exactly the
// valid JSON objects and reads the same "model", "stream" and
// "stream_options.include_usage" from them.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"a":{"b":[1,2,{"c":"\"}"}]},"model":"x\ty"}`, `[]`, `{"model":1}`, `{"stream":null}`, ` { } `,
		`{"stream_options":{"include_usage":true}}`, `{"stream_options":{"include_usage":1}}`, `{"stream_options":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseRequest(body)
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) != nil || members == nil {
			if err == nil {
				t.Fatalf("parseRequest accepted %q, which is not a JSON object", body)
			}
			return
		}
		var want struct {
			Model         string
			Stream        bool
			StreamOptions map[string]json.RawMessage // the last duplicate wins, as at the top level
			IncludeUsage  bool
		}
		modelOK := members["model"] == nil || json.Unmarshal(members["model"], &want.Model) == nil
		streamOK := members["stream"] == nil || json.Unmarshal(members["stream"], &want.Stream) == nil
		optionsOK := members["stream_options"] == nil || json.Unmarshal(members["stream_options"], &want.StreamOptions) == nil
		if u := want.StreamOptions["include_usage"]; optionsOK && u != nil {
			optionsOK = json.Unmarshal(u, &want.IncludeUsage) == nil
		}
		if !modelOK || !streamOK || !optionsOK {
			if err == nil {
				t.Fatalf("parseRequest accepted %q: model, stream or stream_options has the wrong type", body)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseRequest(%q): %v", body, err)
		}
		if got.Model != want.Model || got.Stream != want.Stream || got.IncludeUsage != want.IncludeUsage {
			t.Fatalf("parseRequest(%q) = %+v, encoding/json reads %+v", body, got, want)
		}
		if (got.StreamOptions != nil) != (want.StreamOptions != nil) {
			t.Fatalf("parseRequest(%q): stream_options %q, encoding/json reads %+v", body, got.StreamOptions, want.StreamOptions)
		}
	})
}

// BenchmarkParseRequest compares parseRequest with decoding the same two fields through
// encoding/json.
func BenchmarkParseRequest(b *testing.B) {
	body := []byte(benchRequest)
	b.Run("parseRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseRequest(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f struct {
				Model  string `json:"model"`
				Stream bool   `json:"stream"`
			}
			if err := json.Unmarshal(body, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
