package emulator

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Envoy's default header limits (HttpConnectionManager common_http_protocol_options,
// max_request_headers_kb), checked after every ext_proc header mutation
// (source/extensions/filters/http/ext_proc/mutation_utils.cc).
const (
	maxHeadersCount = 100
	maxHeadersBytes = 60 * 1024
)

// mutationRules is Filters::Common::MutationRules::Checker
// (source/extensions/filters/common/mutation_rules/mutation_rules.cc).
type mutationRules struct {
	allowAllRouting, allowEnvoy, disallowSystem, disallowAll, disallowIsError bool
	allow, disallow                                                           *regexp.Regexp
}

type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

func compileMutationRules(r *mutationrulesv3.HeaderMutationRules, path string, p *problems) mutationRules {
	out := mutationRules{
		allowAllRouting: r.GetAllowAllRouting().GetValue(),
		allowEnvoy:      r.GetAllowEnvoy().GetValue(),
		disallowSystem:  r.GetDisallowSystem().GetValue(),
		disallowAll:     r.GetDisallowAll().GetValue(),
		disallowIsError: r.GetDisallowIsError().GetValue(),
	}
	var err error
	if r.GetAllowExpression() != nil {
		if out.allow, err = regexp.Compile("^(?:" + r.GetAllowExpression().GetRegex() + ")$"); err != nil {
			p.addf("%s.allow_expression: %w", path, err)
		}
	}
	if r.GetDisallowExpression() != nil {
		if out.disallow, err = regexp.Compile("^(?:" + r.GetDisallowExpression().GetRegex() + ")$"); err != nil {
			p.addf("%s.disallow_expression: %w", path, err)
		}
	}
	return out
}

// routingHeaders may only change with allow_all_routing (ExtraRoutingHeaders).
var routingHeaders = map[string]bool{"host": true, ":authority": true, ":method": true, ":scheme": true}

func (r *mutationRules) check(op checkOp, name, value string) checkResult {
	if r.allowed(op, name) && (op == opRemove || validMutationValue(name, value)) {
		return checkOK
	}
	if r.disallowIsError {
		return checkFail
	}
	return checkIgnore
}

func (r *mutationRules) allowed(op checkOp, name string) bool {
	if op == opRemove && (strings.HasPrefix(name, ":") || name == "host") {
		// No matter what, "host" and ":" headers cannot be removed.
		return false
	}
	if r.disallow != nil && r.disallow.MatchString(name) {
		return false
	}
	if r.allow != nil && r.allow.MatchString(name) {
		return true
	}
	if r.disallowAll {
		return false
	}
	if !r.allowAllRouting && routingHeaders[name] {
		return false
	}
	if strings.HasPrefix(name, ":") && (op == opAppend || r.disallowSystem) {
		return false
	}
	if !r.allowEnvoy && strings.HasPrefix(name, "x-envoy") {
		return false
	}
	return true
}

// validMutationValue is Checker::isValidValue.
func validMutationValue(name, value string) bool {
	if !strings.HasPrefix(name, ":") && !validHeaderValue(value) {
		return false
	}
	switch name {
	case "host", ":authority":
		return value != "" && validHeaderValue(value) && !strings.ContainsAny(value, " /?#@")
	case ":scheme":
		return value == "http" || value == "https"
	case ":status":
		n, err := strconv.Atoi(value)
		return err == nil && n >= 200
	}
	return true
}

// errMutation marks a mutation the filter rejects with a local reply (status_on_error).
var errMutation = errors.New("invalid header mutation")

// applyHeaderMutation is MutationUtils::applyHeaderMutations: removals first, then sets.
// Disallowed mutations are ignored, or fail the request with disallow_is_error. When
// skipContentLength is set (STREAMED and the other modes where Envoy drops content-length),
// a content-length set by the server is ignored.
func applyHeaderMutation(m *extprocv3.HeaderMutation, h *headerMap, replacing bool, rules *mutationRules, skipContentLength bool) error {
	if m == nil {
		return nil
	}
	if len(m.GetRemoveHeaders()) > maxHeadersCount || len(m.GetSetHeaders()) > maxHeadersCount {
		return fmt.Errorf("%w: header mutation count exceeds %d", errMutation, maxHeadersCount)
	}
	for _, name := range m.GetRemoveHeaders() {
		if !validHeaderName(strings.ToLower(name)) {
			return fmt.Errorf("%w: invalid character in remove_headers", errMutation)
		}
		lname := strings.ToLower(name)
		switch rules.check(opRemove, lname, "") {
		case checkOK:
			h.remove(lname)
		case checkFail:
			return fmt.Errorf("%w: invalid attempt to remove %s", errMutation, lname)
		}
	}
	for _, sh := range m.GetSetHeaders() {
		if sh.GetHeader() == nil {
			continue
		}
		if sh.GetHeader().GetValue() != "" && len(sh.GetHeader().GetRawValue()) > 0 {
			return fmt.Errorf("%w: only one of value or raw_value may be set", errMutation)
		}
		// Envoy reads raw_value only (envoy.reloadable_features.send_header_raw_value):
		// an entry with just value sets an empty header.
		value := string(sh.GetHeader().GetRawValue())
		name := strings.ToLower(sh.GetHeader().GetKey())
		if !validHeaderName(name) || !validHeaderValue(value) {
			return fmt.Errorf("%w: invalid character in set_headers", errMutation)
		}
		if skipContentLength && name == "content-length" {
			continue
		}
		appendMode, op, apply := false, opSet, true
		switch sh.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			// Zero value: the deprecated append flag decides, and it defaults to false here.
			appendMode = sh.GetAppend().GetValue()
			if appendMode && h.has(name) {
				op = opAppend
			}
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			appendMode, apply = true, !h.has(name)
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			apply = h.has(name)
		default:
			return fmt.Errorf("%w: invalid append_action for %s", errMutation, name)
		}
		if !apply {
			continue
		}
		res := rules.check(op, name, value)
		if replacing && name == ":method" {
			// CONTINUE_AND_REPLACE may change the method, for compatibility.
			res = checkOK
		}
		switch res {
		case checkOK:
			if appendMode {
				h.add(name, value)
			} else {
				h.set(name, value)
			}
		case checkFail:
			return fmt.Errorf("%w: invalid attempt to modify %s", errMutation, name)
		}
	}
	size := 0
	for _, e := range h.entries {
		size += len(e.key) + len(e.value)
	}
	if len(h.entries) > maxHeadersCount || size > maxHeadersBytes {
		return fmt.Errorf("%w: headers exceed the count or size limit after mutation", errMutation)
	}
	return nil
}
