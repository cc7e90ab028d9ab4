package envoy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Problem is one thing wrong with an envoy.yaml: where, and why.
type Problem struct {
	// Path locates the field in proto field names, such as
	// static_resources.clusters[2].typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].http_filters[1].
	// The contents of an Any continue the path of the Any field.
	Path string
	// Message says what is wrong and, where it helps, what Envoy or tollgate would do.
	Message string
}

// Error returns "path: message".
func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems returns the problems an error from Validate or Check joins, in order.
func Problems(err error) []*Problem {
	var out []*Problem
	var visit func(error)
	visit = func(err error) {
		if p, ok := err.(*Problem); ok {
			out = append(out, p)
			return
		}
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				visit(inner)
			}
		case interface{ Unwrap() error }:
			visit(e.Unwrap())
		}
	}
	visit(err)
	return out
}

// problems collects Problems; err joins them.
type problems struct {
	list []error
	at   map[string]bool // paths with a problem
}

func (ps *problems) add(path, format string, args ...any) {
	if ps.at == nil {
		ps.at = map[string]bool{}
	}
	ps.at[path] = true
	ps.list = append(ps.list, &Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error { return errors.Join(ps.list...) }

// Validate reports every problem Envoy v1.40 would refuse an envoy.yaml for, joined:
// the protoc-gen-validate rules of every message, Anys included (PGV alone does not look
// inside an Any), every Any resolved to a linked-in type, and the rules Envoy enforces
// in C++ when it loads the config (see rules.go). Each problem is a *Problem; Problems
// lists them.
func Validate(b *bootstrapv3.Bootstrap) error {
	var ps problems
	walk(&ps, b.ProtoReflect(), "")
	checkRules(&ps, b)
	return ps.err()
}

// walk validates m and everything under it: PGV rules message by message, Anys unpacked,
// durations in range.
func walk(ps *problems, m protoreflect.Message, path string) {
	switch msg := m.Interface().(type) {
	case *anypb.Any:
		inner, err := msg.UnmarshalNew()
		switch {
		case errors.Is(err, protoregistry.NotFound):
			ps.add(path, "unknown type %q: its Go package is not linked in (add a blank import of its go-control-plane package to envoy/parse.go)", msg.GetTypeUrl())
		case err != nil:
			ps.add(path, "cannot decode %q: %v", msg.GetTypeUrl(), err)
		default:
			walk(ps, inner.ProtoReflect(), path)
		}
		return
	case *durationpb.Duration:
		checkDuration(ps, msg, path)
		return
	}
	validatePGV(ps, m, path)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				walk(ps, v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			mv := v.Map()
			var keys []protoreflect.MapKey
			mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			// Map order is random; problems come out in a stable order.
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				walk(ps, mv.Get(k).Message(), fmt.Sprintf("%s[%s]", p, k.String()))
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walk(ps, v.Message(), p)
		}
		return true
	})
}

// pgvError is what every protoc-gen-validate error type implements.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

// validatePGV reports m's own protoc-gen-validate violations. A violation inside an
// embedded message is left to the walk, which reaches that message with its full path.
func validatePGV(ps *problems, m protoreflect.Message, path string) {
	v, ok := m.Interface().(interface{ ValidateAll() error })
	if !ok {
		return
	}
	err := v.ValidateAll()
	if err == nil {
		return
	}
	all := []error{err}
	if multi, ok := err.(interface{ AllErrors() []error }); ok {
		all = multi.AllErrors()
	}
	for _, e := range all {
		var pe pgvError
		if !errors.As(e, &pe) {
			ps.add(path, "%v", e)
			continue
		}
		if pe.Reason() == "embedded message failed validation" {
			continue
		}
		msg := pe.Reason()
		if c := pe.Cause(); c != nil {
			msg += ": " + c.Error()
		}
		ps.add(join(path, protoFieldPath(m.Descriptor(), pe.Field())), "%s", msg)
	}
}

// protoFieldPath turns PGV's Go field name ("TypedExtensionProtocolOptions[key]",
// "ClusterSpecifier") into the proto name the YAML uses.
func protoFieldPath(md protoreflect.MessageDescriptor, goField string) string {
	name, suffix := goField, ""
	if i := strings.IndexByte(goField, '['); i >= 0 {
		name, suffix = goField[:i], goField[i:]
	}
	fields := md.Fields()
	for i := range fields.Len() {
		if goCamelCase(string(fields.Get(i).Name())) == name {
			return string(fields.Get(i).Name()) + suffix
		}
	}
	oneofs := md.Oneofs()
	for i := range oneofs.Len() {
		if goCamelCase(string(oneofs.Get(i).Name())) == name {
			return string(oneofs.Get(i).Name()) + suffix
		}
	}
	return goField
}

// goCamelCase is the Go name protoc-gen-go gives a proto name: each word starts upper
// case, where a word is a letter followed by lower-case letters; an underscore before a
// lower-case letter is dropped, a leading one becomes X ("http2_protocol_options" is
// "Http2ProtocolOptions").
func goCamelCase(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' && i == 0:
			b.WriteByte('X')
		case c == '_' && i+1 < len(s) && isLower(s[i+1]):
		case c == '_' || '0' <= c && c <= '9':
			b.WriteByte(c)
		default:
			if isLower(c) {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			for ; i+1 < len(s) && isLower(s[i+1]); i++ {
				b.WriteByte(s[i+1])
			}
		}
	}
	return b.String()
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// maxDurationSeconds is the largest seconds value Envoy accepts in a Duration: the one
// that, nanoseconds added, still fits an int64 count of nanoseconds (about 292 years).
const maxDurationSeconds = (1<<63 - 1 - 999_999_999) / 1_000_000_000

// checkDuration applies Envoy's duration rule (source/common/protobuf/utility.cc,
// validateDurationUnifiedNoThrow, run on every Duration of a config as it loads):
// non-negative, nanos below a second, seconds below maxDurationSeconds.
func checkDuration(ps *problems, d *durationpb.Duration, path string) {
	if ps.at[path] {
		return // PGV already said what is wrong with it.
	}
	switch {
	case d.GetSeconds() < 0 || d.GetNanos() < 0:
		ps.add(path, "negative duration %s", durationString(d))
	case d.GetNanos() > 999_999_999 || d.GetSeconds() > maxDurationSeconds:
		ps.add(path, "duration %s out of range", durationString(d))
	}
}

func durationString(d *durationpb.Duration) string {
	return fmt.Sprintf("%ds %dns", d.GetSeconds(), d.GetNanos())
}

// join appends a field name to a path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// unpack returns the message an Any holds, or nil when it does not resolve (the walk
// reports that) or is absent.
func unpack(a *anypb.Any) proto.Message {
	if a == nil {
		return nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil
	}
	return m
}
