package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Principal is who a request runs as. Its fields mirror extproc.Principal one for one,
// in the same order, so cmd/tollgate turns a *keys.Principal into an *extproc.Principal
// with a plain pointer conversion: no copy, no allocation, and no import between the two
// packages.
type Principal struct {
	// KeyHash is the SHA-256 hex of the key (LiteLLM's token): the name spend, limits and
	// logs use. For an old key in its /key/regenerate grace period it is the new key's hash,
	// so both draw on one budget.
	KeyHash string
	// KeyAlias is the key's key_alias, if it has one.
	KeyAlias string
	// Models are the aliases (or access groups) the key may use; empty means all. They are
	// the key's models narrowed by its team's (or, for a key with no team, its user's).
	Models []string
	// Admin keys belong to a user with user_role proxy_admin: they may call the admin API.
	Admin bool
	// TeamID and UserID own the key.
	TeamID, UserID string
}

// Key is an authenticated virtual key. Authenticate returns shared, immutable values:
// callers must not modify them.
type Key struct {
	Principal
	// Role is the user_role of the key's user (proxy_admin, proxy_admin_viewer,
	// internal_user, internal_user_viewer), or empty.
	Role string
	// Expires is when the key stops working; zero means never.
	Expires time.Time

	blocked string // "key" or "team" when blocked, else empty
	expires int64  // Expires in Unix nanoseconds, 0 for never: one integer compare per hit
}

// CheckModel returns nil if the key may use model, directly or through one of groups (the
// alias's model_info.access_groups), and otherwise an ErrModelNotAllowed error naming the
// models it may use.
func (k *Key) CheckModel(model string, groups ...string) error {
	if len(k.Models) == 0 || slices.Contains(k.Models, model) {
		return nil
	}
	for _, g := range groups {
		if slices.Contains(k.Models, g) {
			return nil
		}
	}
	return fail(ErrModelNotAllowed, "model",
		"this key may not use model %q; it may use: %s. Generate a key scoped to that model (/key/generate with \"models\")",
		model, strings.Join(k.Models, ", "))
}

// record is a key as Redis holds it (JSON under k:<hash>): everything authentication
// needs, already combined with the key's team and user. Limits and counters live apart
// (see budget.go), so changing a budget never touches this record or the caches.
type record struct {
	Token   string   `json:"token"` // the canonical hash: differs from the record's name only in a grace period
	Alias   string   `json:"key_alias,omitempty"`
	Models  []string `json:"models,omitempty"`
	Role    string   `json:"user_role,omitempty"`
	TeamID  string   `json:"team_id,omitempty"`
	UserID  string   `json:"user_id,omitempty"`
	Expires int64    `json:"expires,omitempty"` // Unix milliseconds; 0 = never
	Blocked string   `json:"blocked,omitempty"` // "key" or "team"
}

// key turns a record into the value Authenticate hands out.
func (r *record) key() *Key {
	k := &Key{
		Principal: Principal{
			KeyHash:  r.Token,
			KeyAlias: r.Alias,
			Models:   r.Models,
			Admin:    r.Role == roleAdmin,
			TeamID:   r.TeamID,
			UserID:   r.UserID,
		},
		Role:    r.Role,
		blocked: r.Blocked,
	}
	if r.Expires != 0 {
		k.Expires = time.UnixMilli(r.Expires).UTC()
		k.expires = k.Expires.UnixNano()
	}
	return k
}

// LiteLLM's user roles.
const (
	roleAdmin        = "proxy_admin"
	roleAdminViewer  = "proxy_admin_viewer"
	roleInternal     = "internal_user"
	roleInternalView = "internal_user_viewer"
)

// LiteLLM's special model names in a key's models.
const (
	allTeamModels  = "all-team-models"  // whatever the key's team may use
	allProxyModels = "all-proxy-models" // every alias
)

// effectiveModels narrows a key's models by its owner's: the key may use a model only if
// every non-empty list allows it. A model must be named in both lists: an access group in
// one does not match an alias in the other, because this package does not know the
// groups (extproc resolves them).
func effectiveModels(key, owner []string) []string {
	key = slices.DeleteFunc(slices.Clone(key), func(m string) bool { return m == allProxyModels })
	if slices.Contains(key, allTeamModels) {
		key = nil // the owner's list decides
	}
	owner = slices.DeleteFunc(slices.Clone(owner), func(m string) bool { return m == allProxyModels })
	switch {
	case len(key) == 0:
		return owner
	case len(owner) == 0:
		return key
	}
	var both []string
	for _, m := range key {
		if slices.Contains(owner, m) {
			both = append(both, m)
		}
	}
	if both == nil {
		// Nothing in common: the key may use nothing, which an empty list cannot say.
		return []string{"(none: the key's models and its owner's have nothing in common)"}
	}
	return both
}

// Digest is the SHA-256 of a key, computed without allocating: keys are copied into a
// stack buffer first, because converting a string longer than 32 bytes to []byte would
// allocate on every request.
func Digest(key string) [sha256.Size]byte {
	var buf [256]byte
	if len(key) > len(buf) {
		return sha256.Sum256([]byte(key))
	}
	n := copy(buf[:], key)
	return sha256.Sum256(buf[:n])
}

// Hash is LiteLLM's token for a key: the SHA-256 hex of the whole key.
func Hash(key string) string {
	d := Digest(key)
	return hex.EncodeToString(d[:])
}

// hashLen is the length of a token (hex SHA-256).
const hashLen = 2 * sha256.Size

// isHash reports whether s looks like a token rather than a key.
func isHash(s string) bool {
	if len(s) != hashLen {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// tokenOf accepts a key or its hash (LiteLLM's admin API takes either) and returns the hash.
func tokenOf(keyOrHash string) string {
	if isHash(keyOrHash) {
		return keyOrHash
	}
	return Hash(keyOrHash)
}

// keyPrefix starts every key, LiteLLM's and tollgate's: it tells a key from its hash, and
// lets Authenticate refuse anything else without a lookup.
const keyPrefix = "sk-"

// newKey returns a fresh key: "sk-" and 43 characters carrying 256 random bits.
func newKey() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken system source)
	return keyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// keyName is how LiteLLM shows a key after it is created: "sk-...abcd".
func keyName(key string) string {
	if len(key) < 8 {
		return "sk-..."
	}
	return "sk-..." + key[len(key)-4:]
}
