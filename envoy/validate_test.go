package envoy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-dev/tollgate/envoy"
)

// problemStrings lists the problems an error joins, sorted.
func problemStrings(err error) []string {
	var out []string
	for _, p := range envoy.Problems(err) {
		out = append(out, p.Error())
	}
	sort.Strings(out)
	return out
}

func parseFile(t *testing.T, path string) (*bootstrapv3.Bootstrap, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := envoy.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return b, data
}

// wantLines returns the "# want: " lines of a test file: the problems it must produce.
func wantLines(data []byte) []string {
	var out []string
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if w, ok := strings.CutPrefix(s.Text(), "# want: "); ok {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

func TestValidateAccepts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("testdata", "article.envoy.yaml"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, _ := parseFile(t, f)
			if err := envoy.Validate(b); err != nil {
				t.Errorf("Validate:\n%v", err)
			}
		})
	}
}

// TestValidateInvalidFiles runs every testdata/invalid file: each names the rule it
// breaks, the Envoy source that enforces it, and on "# want: " lines exactly the
// problems Validate must report.
func TestValidateInvalidFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/invalid files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, data := parseFile(t, f)
			want := wantLines(data)
			if len(want) == 0 {
				t.Fatal("file has no # want: lines")
			}
			if diff := cmp.Diff(want, problemStrings(envoy.Validate(b))); diff != "" {
				t.Errorf("Validate problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateAny covers Anys YAML cannot hold, because Parse already needs their type:
// a type not linked in, and bytes that do not decode.
func TestValidateAny(t *testing.T) {
	filter := "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config"
	tests := []struct {
		name string
		any  *anypb.Any
		want []string
	}{
		{"unknown type", &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope"}, []string{
			filter + `: unknown type "type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope": its Go package is not linked in (add a blank import of its go-control-plane package to envoy/parse.go)`,
		}},
		{"bytes that do not decode", &anypb.Any{
			TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
			Value:   []byte{0xff, 0xff},
		}, []string{
			// protobuf varies the spaces of its error texts, so only the start is compared.
			filter + `: cannot decode "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router": proto:`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := parseFile(t, filepath.Join("testdata", "valid", "minimal.yaml"))
			editAny(t, hcmAny(b), func(h *hcmv3.HttpConnectionManager) {
				h.HttpFilters[0].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: tt.any}
			})
			got := problemStrings(envoy.Validate(b))
			if len(got) != len(tt.want) {
				t.Fatalf("Validate problems = %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %q does not start with %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// TestValidateNestedAny checks that a violation two Anys deep (an ext_proc filter inside
// the HTTP connection manager inside the listener) is found, with its full path.
func TestValidateNestedAny(t *testing.T) {
	b, err := envoy.Render(articleConfig(), articleOptions())
	if err != nil {
		t.Fatal(err)
	}
	editAny(t, hcmAny(b), func(h *hcmv3.HttpConnectionManager) {
		editAny(t, h.HttpFilters[0].GetTypedConfig(), func(ep *extprocv3.ExternalProcessor) {
			ep.MessageTimeout = durationpb.New(2 * time.Hour) // PGV: at most 3600s
		})
	})
	want := []string{
		"static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.message_timeout: value must be inside range [0s, 1h0m0s]",
	}
	if diff := cmp.Diff(want, problemStrings(envoy.Validate(b))); diff != "" {
		t.Errorf("Validate problems (-want +got):\n%s", diff)
	}
}

func TestProblems(t *testing.T) {
	a := &envoy.Problem{Path: "a.b", Message: "broken"}
	b := &envoy.Problem{Message: "no path"}
	err := fmt.Errorf("check: %w", errors.Join(a, errors.Join(b)))
	if diff := cmp.Diff([]*envoy.Problem{a, b}, envoy.Problems(err)); diff != "" {
		t.Errorf("Problems (-want +got):\n%s", diff)
	}
	if got, want := a.Error()+"|"+b.Error(), "a.b: broken|no path"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if envoy.Problems(nil) != nil {
		t.Error("Problems(nil) is not empty")
	}
}

// hcmAny is the Any holding the first listener's HTTP connection manager.
func hcmAny(b *bootstrapv3.Bootstrap) *anypb.Any {
	return b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig()
}

// editAny unpacks the message a holds, lets edit change it, and packs it back into a.
func editAny[T proto.Message](t *testing.T, a *anypb.Any, edit func(T)) {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := m.(T)
	if !ok {
		t.Fatalf("Any holds %T", m)
	}
	edit(msg)
	if err := a.MarshalFrom(msg); err != nil {
		t.Fatal(err)
	}
}
