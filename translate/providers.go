package translate

// registry maps each LiteLLM provider prefix to its spec.
var registry = map[string]*Spec{}
