package emulator

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// problems collects every configuration problem so New can report them all at once.
type problems struct {
	errs []error
}

func (p *problems) addf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

// unsupported reports every populated field of msg that is not in allowed. The emulator
// refuses configuration it does not reproduce instead of silently behaving differently
// from Envoy; allowed lists the fields it either emulates or that cannot change what a
// client or an ext_proc server observes (stat prefixes, access logs, ...).
func (p *problems) unsupported(msg proto.Message, path string, allowed ...string) {
	if msg == nil {
		return
	}
	m := msg.ProtoReflect()
	if !m.IsValid() {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			p.addf("%s.%s: not supported by the emulator", path, fd.Name())
		}
		return true
	})
}

// durationOr converts an optional proto duration, returning def when it is unset.
func durationOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}
