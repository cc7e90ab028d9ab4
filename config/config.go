// Package config loads tollgate's config.yaml, which is LiteLLM-compatible: the same
// model_list, litellm_settings, router_settings and general_settings a LiteLLM proxy
// reads. Load resolves os.environ/ references, fills provider defaults and reports every
// problem at once.
package config

import (
	"time"
)

// Config is one validated config.yaml.
type Config struct {
	// Deployments are model_list entries in file order. Several deployments may share an
	// alias: they form one load-balanced group.
	Deployments []*Deployment

	// Fallbacks maps an alias to the aliases tried, in order, when it fails
	// (litellm_settings.fallbacks).
	Fallbacks map[string][]string
	// ContextWindowFallbacks maps an alias to the aliases tried when the request is too
	// long for it (litellm_settings.context_window_fallbacks).
	ContextWindowFallbacks map[string][]string
	// ContentPolicyFallbacks maps an alias to the aliases tried when the provider refuses
	// the request on content-policy grounds (litellm_settings.content_policy_fallbacks).
	ContentPolicyFallbacks map[string][]string
	// DefaultFallbacks apply to every alias without its own entry.
	DefaultFallbacks []string
	// NumRetries is how many times a failed attempt is retried on the same alias before
	// its fallbacks are tried (litellm_settings.num_retries or router_settings.num_retries;
	// the router's wins, as in LiteLLM; default 2, LiteLLM's).
	NumRetries int
	// RequestTimeout bounds one attempt (litellm_settings.request_timeout or
	// router_settings.timeout, the router's winning; default 600s).
	RequestTimeout time.Duration

	// MasterKey is general_settings.master_key (LITELLM_MASTER_KEY when unset).
	MasterKey Secret
	// DatabaseURL is general_settings.database_url (DATABASE_URL when unset).
	DatabaseURL Secret
	// MaxRequestBytes is general_settings.max_request_size_mb in bytes (default 32 MiB).
	MaxRequestBytes int64
	// SpendRetention is general_settings.maximum_spend_logs_retention_period: spend log
	// records older than this are deleted (a whole month at a time); 0 keeps everything.
	SpendRetention time.Duration
	// KeyHeader is general_settings.litellm_key_header_name: an extra header that may
	// carry the client key.
	KeyHeader string

	// Environment is environment_variables: values os.environ/ references see before the
	// process environment, as LiteLLM sets them. tollgate never writes them into its own
	// process environment.
	Environment map[string]Secret

	// Warnings are problems that do not stop the config from loading (settings tollgate
	// reads but does not act on, unsupported routing strategies, ...).
	Warnings []string

	// index answers Aliases, DeploymentsFor and Deployment with map reads; Load builds it.
	index *index
}

// Deployment is one model_list entry: an alias and where its requests go.
type Deployment struct {
	// ID is model_info.id, or the alias and the deployment's index within its alias
	// ("gpt-5.5-0"). It names the deployment's Envoy cluster and is stable across reloads
	// as long as the model_list order is.
	ID string
	// Alias is model_name: what clients send as "model".
	Alias string
	// Provider is the LiteLLM provider prefix of litellm_params.model ("openai",
	// "azure", "ollama", ...).
	Provider string
	// Model is the provider's own model name (litellm_params.model without the prefix).
	Model string
	// APIBase is litellm_params.api_base, or the provider's default base URL.
	APIBase string
	// APIKey is litellm_params.api_key; empty for providers that need none.
	APIKey Secret
	// APIVersion is litellm_params.api_version (Azure's api-version query parameter).
	APIVersion string
	// Organization is litellm_params.organization (OpenAI-Organization header).
	Organization string
	// ExtraHeaders are litellm_params.extra_headers, sent on every attempt.
	ExtraHeaders map[string]string
	// RPM and TPM are the deployment's own limits (litellm_params.rpm / tpm); 0 = none.
	RPM, TPM int
	// Timeout bounds one attempt on this deployment (litellm_params.timeout); 0 = the
	// config's RequestTimeout.
	Timeout time.Duration
	// StreamTimeout bounds one streaming attempt (litellm_params.stream_timeout); 0 =
	// Timeout.
	StreamTimeout time.Duration

	// AWS credentials of bedrock/ deployments: aws_region_name, aws_access_key_id,
	// aws_secret_access_key and aws_session_token, or the AWS_* environment when
	// litellm_params leaves them out (see finishBedrock). Their APIBase defaults to the
	// region's Bedrock Runtime endpoint.
	AWSRegion          string
	AWSAccessKeyID     Secret
	AWSSecretAccessKey Secret
	AWSSessionToken    Secret
	// A web identity (IRSA on EKS) when there is no access key and no api_key:
	// AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, the session name from
	// AWS_ROLE_SESSION_NAME (default tollgate), exchanged for temporary credentials at
	// AWSSTSEndpoint (AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL, default the region's STS).
	AWSRoleARN              string
	AWSWebIdentityTokenFile string
	AWSRoleSessionName      string
	AWSSTSEndpoint          string
	// Or the container credentials endpoint (EKS Pod Identity, ECS task roles):
	// AWS_CONTAINER_CREDENTIALS_FULL_URI, or ECS's _RELATIVE_URI, with the authorization
	// token AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE holds (re-read for each call) or
	// AWS_CONTAINER_AUTHORIZATION_TOKEN.
	AWSContainerCredentialsURI string
	AWSContainerAuthTokenFile  string
	AWSContainerAuthToken      Secret
	// Vertex AI settings of vertex_ai/ deployments: vertex_project, vertex_location
	// (default us-central1) and the service-account key's JSON, read from the file
	// vertex_credentials or GOOGLE_APPLICATION_CREDENTIALS names when it is not the JSON
	// itself (see finishVertex). Their APIBase defaults to the location's endpoint.
	VertexProject     string
	VertexLocation    string
	VertexCredentials Secret

	// Costs override the built-in price, from litellm_params or else model_info.
	Costs Costs

	// Info is model_info.
	Info ModelInfo
}

// ModelInfo is model_info: facts about a deployment that are not where it is.
type ModelInfo struct {
	Mode            string   // "chat", "completion", "embedding", ...
	BaseModel       string   // the model to price this deployment as
	AccessGroups    []string // key scopes that include this alias
	MaxInputTokens  int
	MaxOutputTokens int
}

// Secret is a credential. It prints as "[redacted]" so it cannot reach a log by accident;
// Reveal returns the value for the one place that needs it.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalText redacts the secret in JSON, YAML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Costs are a deployment's own prices in USD per token, under LiteLLM's names:
// input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
// cache_creation_input_token_cost and output_cost_per_reasoning_token. Nil is not set.
type Costs struct {
	Input, Output, CacheRead, CacheWrite, Reasoning *float64
}

// Set reports whether any price is set.
func (c Costs) Set() bool {
	return c.Input != nil || c.Output != nil || c.CacheRead != nil || c.CacheWrite != nil || c.Reasoning != nil
}

// orElse returns c with its unset prices taken from d.
func (c Costs) orElse(d Costs) Costs {
	for _, f := range []struct {
		c **float64
		d *float64
	}{
		{&c.Input, d.Input}, {&c.Output, d.Output}, {&c.CacheRead, d.CacheRead},
		{&c.CacheWrite, d.CacheWrite}, {&c.Reasoning, d.Reasoning},
	} {
		if *f.c == nil {
			*f.c = f.d
		}
	}
	return c
}
