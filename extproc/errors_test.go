package extproc

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

func TestAPIError(t *testing.T) {
	provider := &translate.APIError{Status: 429, Type: "rate_limit_error", Message: "slow down", Code: "rate_limit_exceeded"}
	cases := []struct {
		name         string
		err          error
		want         *translate.APIError
		wantInternal bool
	}{
		{"translation error keeps its status", fmt.Errorf("translate: %w", provider), provider, false},
		{"wrapped sentinel", fmt.Errorf("%w: revoked", ErrInvalidKey),
			&translate.APIError{Status: 401, Type: "authentication_error", Code: "invalid_api_key", Message: "invalid API key: revoked"}, false},
		{"request error carries its param", fail(errModelNotFound, "model", "no such model"),
			&translate.APIError{Status: 404, Type: "invalid_request_error", Code: "model_not_found", Param: "model", Message: "no such model"}, false},
		{"anything else is internal and says nothing", errors.New("redis: connection refused"),
			&translate.APIError{Status: 500, Type: "api_error", Code: "internal_error",
				Message: "tollgate failed to process the request; the gateway log has the cause"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, internal := apiError(tc.err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("apiError (-want +got):\n%s", diff)
			}
			if internal != tc.wantInternal {
				t.Errorf("internal = %v, want %v", internal, tc.wantInternal)
			}
		})
	}
}

func TestErrorKindsAreDistinct(t *testing.T) {
	codes := map[string]bool{}
	for _, k := range errorKinds {
		if codes[k.code] {
			t.Errorf("code %q is used twice", k.code)
		}
		codes[k.code] = true
	}
}
