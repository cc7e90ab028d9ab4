package envoy

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestProtoFieldPath checks the mapping from the Go field names protoc-gen-validate
// reports to the proto names of envoy.yaml, for plain fields, indexed and keyed ones,
// oneof members and oneofs.
func TestProtoFieldPath(t *testing.T) {
	route := (&routev3.RouteAction{}).ProtoReflect().Descriptor()
	hpo := (&httpv3.HttpProtocolOptions_ExplicitHttpConfig{}).ProtoReflect().Descriptor()
	vhost := (&routev3.VirtualHost{}).ProtoReflect().Descriptor()
	tests := []struct {
		md      protoreflect.MessageDescriptor
		goField string
		want    string
	}{
		{route, "ClusterHeader", "cluster_header"},
		{route, "ClusterSpecifier", "cluster_specifier"},
		{route, "RequestMirrorPolicies[2]", "request_mirror_policies[2]"},
		{hpo, "Http2ProtocolOptions", "http2_protocol_options"},
		{vhost, "TypedPerFilterConfig[tollgate]", "typed_per_filter_config[tollgate]"},
		{vhost, "NoSuchField", "NoSuchField"},
	}
	for _, tt := range tests {
		t.Run(tt.goField, func(t *testing.T) {
			if got := protoFieldPath(tt.md, tt.goField); got != tt.want {
				t.Errorf("protoFieldPath(%s, %q) = %q, want %q", tt.md.FullName(), tt.goField, got, tt.want)
			}
		})
	}
}

func TestGoCamelCase(t *testing.T) {
	tests := map[string]string{
		"name":                   "Name",
		"http2_protocol_options": "Http2ProtocolOptions",
		"x_forwarded_for":        "XForwardedFor",
		"_private":               "XPrivate",
		"a_1b":                   "A_1B",
	}
	for in, want := range tests {
		if got := goCamelCase(in); got != want {
			t.Errorf("goCamelCase(%q) = %q, want %q", in, got, want)
		}
	}
}
