package translate

// registry maps each LiteLLM provider prefix to its spec. Base URLs are the providers'
// documented OpenAI-compatible endpoints; api_base in config.yaml overrides them.
var registry = map[string]*Spec{
	"openai":       openAICompatible("openai", "https://api.openai.com/v1", true, ChatCompletions, Completions, Embeddings),
	"anthropic":    anthropicSpec,
	"bedrock":      bedrockSpec,
	"azure":        {Name: "azure", KeyRequired: true, Endpoints: []Endpoint{ChatCompletions, Completions, Embeddings}, StreamUsage: true, Translator: openAI{azure: true}},
	"azure_ai":     {Name: "azure_ai", KeyRequired: true, Endpoints: []Endpoint{ChatCompletions, Embeddings}, StreamUsage: true, Translator: openAI{azureAI: true}},
	"ollama":       ollamaSpec("ollama"),
	"ollama_chat":  ollamaSpec("ollama_chat"),
	"hosted_vllm":  openAICompatible("hosted_vllm", "", false, ChatCompletions, Completions, Embeddings),
	"gemini":       geminiSpec,
	"vertex_ai":    vertexSpec,
	"groq":         openAICompatible("groq", "https://api.groq.com/openai/v1", true, ChatCompletions),
	"mistral":      openAICompatible("mistral", "https://api.mistral.ai/v1", true, ChatCompletions, Embeddings),
	"deepseek":     openAICompatible("deepseek", "https://api.deepseek.com/v1", true, ChatCompletions),
	"together_ai":  openAICompatible("together_ai", "https://api.together.xyz/v1", true, ChatCompletions, Completions, Embeddings),
	"openrouter":   openAICompatible("openrouter", "https://openrouter.ai/api/v1", true, ChatCompletions, Completions),
	"fireworks_ai": openAICompatible("fireworks_ai", "https://api.fireworks.ai/inference/v1", true, ChatCompletions, Completions, Embeddings),
	"xai":          openAICompatible("xai", "https://api.x.ai/v1", true, ChatCompletions),
	"perplexity":   openAICompatible("perplexity", "https://api.perplexity.ai", true, ChatCompletions),
}

func openAICompatible(name, base string, keyRequired bool, eps ...Endpoint) *Spec {
	return &Spec{Name: name, DefaultBase: base, KeyRequired: keyRequired, Endpoints: eps, StreamUsage: true, Translator: openAI{}}
}

// ollamaSpec serves ollama/ and ollama_chat/ through Ollama's OpenAI-compatible /v1 API,
// so both prefixes behave alike; LiteLLM's distinction (/api/generate vs /api/chat) is
// about Ollama's native API, which tollgate does not need.
func ollamaSpec(name string) *Spec {
	return &Spec{Name: name, DefaultBase: "http://localhost:11434", Endpoints: []Endpoint{ChatCompletions, Completions, Embeddings}, StreamUsage: true, Translator: openAI{ollama: true}}
}
