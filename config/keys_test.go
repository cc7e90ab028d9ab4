package config

import "testing"

// Each key table is consistent: a used key has a reader, no other key has one (it would
// never run), a refused key says what to do, and no key is listed twice.
func TestKeyTables(t *testing.T) {
	t.Run("top level", func(t *testing.T) { checkKeys(t, topLevelKeys) })
	t.Run("model_list", func(t *testing.T) { checkKeys(t, modelKeys) })
	t.Run("litellm_params", func(t *testing.T) { checkKeys(t, paramKeys) })
	t.Run("model_info", func(t *testing.T) { checkKeys(t, infoKeys) })
	t.Run("litellm_settings", func(t *testing.T) { checkKeys(t, litellmSettingsKeys) })
	t.Run("router_settings", func(t *testing.T) { checkKeys(t, routerSettingsKeys) })
	t.Run("general_settings", func(t *testing.T) { checkKeys(t, generalSettingsKeys) })
}

func checkKeys[T any](t *testing.T, keys []key[T]) {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.name] {
			t.Errorf("%s is listed twice", k.name)
		}
		seen[k.name] = true
		if (k.use == used) != (k.read != nil) {
			t.Errorf("%s: use %d with reader %v; want a reader exactly for used keys", k.name, k.use, k.read != nil)
		}
		if k.use == refused && k.note == "" {
			t.Errorf("%s is refused without a note saying what to do", k.name)
		}
		if k.use < used || k.use > refused {
			t.Errorf("%s has no use", k.name)
		}
	}
}
