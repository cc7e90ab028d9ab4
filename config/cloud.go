package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/tollgate-dev/tollgate/translate"
)

// Environment variables bedrock/ and vertex_ai/ deployments fall back to when
// litellm_params leaves a setting out, as LiteLLM and the AWS and Google SDKs read them.
var (
	// awsRegionEnv are read in order: LiteLLM's own name first, then the AWS SDKs'.
	awsRegionEnv = []string{"AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"}
)

const (
	awsAccessKeyEnv    = "AWS_ACCESS_KEY_ID"
	awsSecretKeyEnv    = "AWS_SECRET_ACCESS_KEY"
	awsSessionTokenEnv = "AWS_SESSION_TOKEN"
	// The web identity the EKS pod identity webhook (IRSA) sets.
	awsRoleARNEnv     = "AWS_ROLE_ARN"
	awsTokenFileEnv   = "AWS_WEB_IDENTITY_TOKEN_FILE"
	awsSessionNameEnv = "AWS_ROLE_SESSION_NAME"
	// The container credentials endpoint EKS Pod Identity and ECS task roles set.
	awsContainerFullURIEnv     = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	awsContainerRelativeURIEnv = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
	awsContainerTokenFileEnv   = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	awsContainerTokenEnv       = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
	// awsContainerHost serves ECS's relative credentials URI.
	awsContainerHost  = "http://169.254.170.2"
	vertexProjectEnv  = "VERTEXAI_PROJECT"
	vertexLocationEnv = "VERTEXAI_LOCATION"
	// googleCredentialsEnv names a service-account key file: Google's Application
	// Default Credentials.
	googleCredentialsEnv = "GOOGLE_APPLICATION_CREDENTIALS"
	// DefaultVertexLocation is LiteLLM's vertex_location default.
	DefaultVertexLocation = "us-central1"
)

// finishCloud completes bedrock/ and vertex_ai/ deployments: their credentials, region
// or location and project, from litellm_params or the environment, and their API base
// when api_base is not set.
func (d *decoder) finishCloud(dr *draft, params string) {
	switch dr.dep.Provider {
	case "bedrock":
		d.finishBedrock(dr, params)
	case "vertex_ai":
		d.finishVertex(dr, params)
	}
}

// finishBedrock resolves a bedrock/ deployment's AWS credentials and region. The
// credentials are an access key (signed with SigV4) from aws_access_key_id and
// aws_secret_access_key or, when both are left out, AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY; or a Bedrock API key in api_key, which is sent as a bearer token
// and then takes precedence over the environment, as in LiteLLM; or else temporary keys
// from a web identity or the container credentials endpoint (awsRoleCredentials). The region is needed to
// sign and to find the endpoint: aws_region_name, AWS_REGION_NAME, AWS_REGION or
// AWS_DEFAULT_REGION.
func (d *decoder) finishBedrock(dr *draft, params string) {
	dep := dr.dep
	fromEnv := false
	if dep.AWSAccessKeyID == "" && dep.AWSSecretAccessKey == "" && dep.APIKey == "" {
		id, _ := d.lookup(awsAccessKeyEnv)
		secret, _ := d.lookup(awsSecretKeyEnv)
		if id != "" || secret != "" {
			fromEnv = true
			dep.AWSAccessKeyID, dep.AWSSecretAccessKey = Secret(id), Secret(secret)
			if dep.AWSSessionToken == "" {
				token, _ := d.lookup(awsSessionTokenEnv)
				dep.AWSSessionToken = Secret(token)
			}
		}
	}
	switch id, secret := dep.AWSAccessKeyID != "", dep.AWSSecretAccessKey != ""; {
	case id && !secret && fromEnv:
		d.errorf(dr.params, join(params, "aws_secret_access_key"), "required: %s is set but %s is not", awsAccessKeyEnv, awsSecretKeyEnv)
	case secret && !id && fromEnv:
		d.errorf(dr.params, join(params, "aws_access_key_id"), "required: %s is set but %s is not", awsSecretKeyEnv, awsAccessKeyEnv)
	case id && !secret:
		d.errorf(dr.params, join(params, "aws_secret_access_key"), "required with aws_access_key_id")
	case secret && !id:
		d.errorf(dr.params, join(params, "aws_access_key_id"), "required with aws_secret_access_key")
	case !id && dep.APIKey == "":
		d.awsRoleCredentials(dr, params)
	}

	regionPath := join(params, "aws_region_name")
	if dep.AWSRegion == "" {
		for _, name := range awsRegionEnv {
			if v, ok := d.lookup(name); ok && v != "" {
				dep.AWSRegion, regionPath = v, fmt.Sprintf("%s (from %s)", regionPath, name)
				break
			}
		}
	}
	needBase := dep.APIBase == ""
	if dep.AWSRegion == "" {
		if needBase || dep.AWSAccessKeyID != "" || dep.AWSRoleARN != "" || dep.AWSContainerCredentialsURI != "" {
			d.errorf(dr.params, regionPath, "required for provider bedrock: the AWS region to send to and sign for (or set %s)",
				strings.Join(awsRegionEnv, ", "))
		}
		return
	}
	base, err := translate.BedrockBase(dep.AWSRegion)
	if err != nil {
		d.errorf(dr.params, regionPath, "%q is not an AWS region name", dep.AWSRegion)
		return
	}
	if needBase {
		dep.APIBase = base
	}
	if dep.AWSRoleARN != "" && dep.AWSSTSEndpoint == "" {
		dep.AWSSTSEndpoint = "https://sts." + dep.AWSRegion + ".amazonaws.com"
	}
}

// awsRoleCredentials finds the temporary credentials of a bedrock/ deployment with no
// keys, in the AWS SDKs' order: a web identity (AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE, as IRSA on EKS sets them), then the container credentials
// endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI, as EKS Pod Identity and
// ECS task roles set them).
func (d *decoder) awsRoleCredentials(dr *draft, params string) {
	dep := dr.dep
	role, _ := d.lookup(awsRoleARNEnv)
	tokenFile, _ := d.lookup(awsTokenFileEnv)
	if role != "" && tokenFile != "" {
		dep.AWSRoleARN, dep.AWSWebIdentityTokenFile = role, tokenFile
		dep.AWSRoleSessionName, _ = d.lookup(awsSessionNameEnv)
		if dep.AWSRoleSessionName == "" {
			dep.AWSRoleSessionName = "tollgate"
		}
		for _, name := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
			if v, ok := d.lookup(name); ok && v != "" {
				dep.AWSSTSEndpoint = v
				break
			}
		}
		return
	}
	full, _ := d.lookup(awsContainerFullURIEnv)
	if rel, _ := d.lookup(awsContainerRelativeURIEnv); full == "" && rel != "" {
		full = awsContainerHost + rel
	}
	if full == "" {
		d.errorf(dr.params, params, "provider bedrock needs AWS credentials: set aws_access_key_id and aws_secret_access_key (or %s and %s), api_key for a Bedrock API key, a web identity (%s and %s, as IRSA on EKS sets them) or container credentials (%s, as EKS Pod Identity and ECS set it); AWS profiles and instance roles are not supported",
			awsAccessKeyEnv, awsSecretKeyEnv, awsRoleARNEnv, awsTokenFileEnv, awsContainerFullURIEnv)
		return
	}
	if !containerCredentialsURI(full) {
		d.errorf(dr.params, params, "%s %q must be https, or http to a loopback address or the ECS or EKS credentials address", awsContainerFullURIEnv, full)
		return
	}
	dep.AWSContainerCredentialsURI = full
	if f, _ := d.lookup(awsContainerTokenFileEnv); f != "" {
		dep.AWSContainerAuthTokenFile = f
	} else if tok, _ := d.lookup(awsContainerTokenEnv); tok != "" {
		dep.AWSContainerAuthToken = Secret(tok)
	}
}

// containerCredentialsURI reports whether raw is a credentials endpoint the AWS SDKs
// would call: https anywhere, or http only to this host or the addresses ECS
// (169.254.170.2) and EKS Pod Identity (169.254.170.23, fd00:ec2::23) serve it on.
func containerCredentialsURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback() ||
		host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23") {
		return true
	}
	return false
}

// finishVertex resolves a vertex_ai/ deployment's project, location and service-account
// key. vertex_project and vertex_location fall back to VERTEXAI_PROJECT and
// VERTEXAI_LOCATION as in LiteLLM, the location then to us-central1;
// vertex_credentials (a key file's path or the key's JSON) to the file
// GOOGLE_APPLICATION_CREDENTIALS names. A deployment with an api_key and no credentials
// uses Vertex AI express mode, which needs neither project nor key file.
func (d *decoder) finishVertex(dr *draft, params string) {
	dep := dr.dep
	if dep.VertexProject == "" {
		dep.VertexProject, _ = d.lookup(vertexProjectEnv)
	}
	if dep.VertexLocation == "" {
		dep.VertexLocation, _ = d.lookup(vertexLocationEnv)
	}
	if dep.VertexLocation == "" {
		dep.VertexLocation = DefaultVertexLocation
	}
	credPath := join(params, "vertex_credentials")
	if dep.VertexCredentials == "" && dep.APIKey == "" {
		if file, ok := d.lookup(googleCredentialsEnv); ok && file != "" {
			dep.VertexCredentials = Secret(file)
			credPath = fmt.Sprintf("%s (from %s)", credPath, googleCredentialsEnv)
		}
	}
	express := dep.VertexCredentials == "" && dep.APIKey != ""

	if spec, ok := translate.LookupModel("vertex_ai", dep.Model); express && ok && spec.Serves(translate.Messages) {
		// Claude on Vertex AI is served through rawPredict with an access token only.
		d.errorf(dr.params, credPath, "required for Claude models on Vertex AI (%s): a service-account key file or its JSON (or set %s); express mode's api_key serves Google's models only",
			dep.Model, googleCredentialsEnv)
	}
	location := dep.VertexLocation
	if express {
		location = "global" // express mode is served by the global endpoint only
	} else {
		if dep.VertexProject == "" {
			d.errorf(dr.params, join(params, "vertex_project"), "required for provider vertex_ai (or set %s)", vertexProjectEnv)
		}
		if dep.VertexCredentials == "" {
			d.errorf(dr.params, credPath, "required for provider vertex_ai: a service-account key file or its JSON (or set %s), or api_key for Vertex AI express mode",
				googleCredentialsEnv)
		} else if key, err := serviceAccountKey(dep.VertexCredentials.Reveal()); err != nil {
			d.errorf(dr.params, credPath, "%v", err)
		} else {
			dep.VertexCredentials = Secret(key)
		}
	}
	base, err := translate.VertexBase(location)
	if err != nil {
		d.errorf(dr.params, join(params, "vertex_location"), "%q is not a Vertex AI location", location)
		return
	}
	if dep.APIBase == "" {
		dep.APIBase = base
	}
}

// serviceAccountKey returns the JSON of a service-account key given as the JSON itself or
// as the path of its file, as LiteLLM accepts both. Messages never quote the key.
func serviceAccountKey(v string) (string, error) {
	key := []byte(v)
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") {
		b, err := os.ReadFile(t)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("key file %s does not exist (the setting takes a service-account key file or its JSON)", t)
		case err != nil:
			return "", fmt.Errorf("key file: %w", err)
		}
		key = b
	}
	var k struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(key, &k); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "", fmt.Errorf("is not valid JSON (syntax error at byte %d)", se.Offset)
		}
		return "", errors.New("is not a service-account key: it must be a JSON object")
	}
	switch {
	case k.Type != "service_account":
		return "", fmt.Errorf("holds %q credentials; tollgate needs a service-account key (type service_account)", k.Type)
	case k.ClientEmail == "" || k.PrivateKey == "":
		return "", errors.New("is not a complete service-account key: client_email and private_key are required")
	}
	return string(key), nil
}
