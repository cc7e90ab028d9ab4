package extproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMasterKey(t *testing.T) {
	sum := sha256.Sum256([]byte(masterKey))
	master := &Principal{KeyHash: hex.EncodeToString(sum[:]), KeyAlias: "master_key", Admin: true}
	cases := []struct {
		name, configured, key string
		want                  *Principal
		wantErr               error
	}{
		{"the master key", masterKey, masterKey, master, nil},
		{"another key", masterKey, "sk-master-0123456788", nil, ErrInvalidKey},
		{"a prefix of the master key", masterKey, masterKey[:5], nil, ErrInvalidKey},
		{"the master key and more", masterKey, masterKey + "0", nil, ErrInvalidKey},
		{"no master key configured", "", "", nil, ErrInvalidKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewMasterKey(tc.configured).Authenticate(context.Background(), tc.key)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}
