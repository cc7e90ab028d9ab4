package extproc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Authenticator turns the key a client sent into the principal it stands for. The router
// stage calls it once per request, from the request-headers phase, so implementations
// must answer from memory for keys they have seen (the performance budget allows no
// network round trip for a cached key).
//
// Errors that mean "this key may not be used" wrap one of ErrInvalidKey, ErrKeyExpired or
// ErrKeyBlocked; their message reaches the client, so it must never contain the key. Any
// other error is treated as an internal failure (500) and logged.
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (*Principal, error)
}

// Principal is who a request runs as, and what it may do.
type Principal struct {
	// KeyHash is the SHA-256 hex of the key (LiteLLM's token column): how spend and logs
	// name a key without holding it.
	KeyHash string
	// KeyAlias is the key's human name, if it has one.
	KeyAlias string
	// Models are the aliases and model_info.access_groups the key may use; empty means
	// every alias.
	Models []string
	// Admin keys may call the admin API; the master key is one.
	Admin bool
	// TeamID and UserID own the key, for spend attribution.
	TeamID, UserID string
}

// MasterKey authenticates general_settings.master_key: the admin key that may use every
// model. It is the only key tollgate knows until virtual keys are configured.
type MasterKey struct {
	digest [sha256.Size]byte
	hash   string
}

// NewMasterKey returns an Authenticator for key. An empty key accepts nothing.
func NewMasterKey(key string) *MasterKey {
	m := &MasterKey{}
	if key != "" {
		m.digest = sha256.Sum256([]byte(key))
		m.hash = hex.EncodeToString(m.digest[:])
	}
	return m
}

// Authenticate accepts exactly the master key. It compares SHA-256 digests in constant
// time, so neither the key's bytes nor its length can be learned from response timing.
func (m *MasterKey) Authenticate(_ context.Context, key string) (*Principal, error) {
	if m.hash == "" {
		return nil, fmt.Errorf("%w: no general_settings.master_key is configured", ErrInvalidKey)
	}
	if p, ok := m.Match(sha256.Sum256([]byte(key))); ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: it is not the master key", ErrInvalidKey)
}

// Match reports whether d, a key's SHA-256 digest, is the master key's (in constant
// time), and returns the master key's principal when it is. It is for callers that
// check one key against several stores: they hash it once, and a key that is not the
// master key costs no error value.
func (m *MasterKey) Match(d [sha256.Size]byte) (*Principal, bool) {
	if m.hash == "" || subtle.ConstantTimeCompare(d[:], m.digest[:]) != 1 {
		return nil, false
	}
	return &Principal{KeyHash: m.hash, KeyAlias: "master_key", Admin: true}, true
}
