package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cloudFields are the Deployment fields finishCloud fills.
type cloudFields struct {
	APIBase, AWSRegion, AWSAccessKeyID, AWSSecretAccessKey, AWSSessionToken string
	AWSRoleARN, AWSWebIdentityTokenFile, AWSRoleSessionName, AWSSTSEndpoint string
	AWSContainerCredentialsURI, AWSContainerAuthTokenFile                   string
	VertexProject, VertexLocation, VertexCredentials                        string
}

func cloudOf(d *Deployment) cloudFields {
	return cloudFields{
		APIBase: d.APIBase, AWSRegion: d.AWSRegion, AWSAccessKeyID: d.AWSAccessKeyID.Reveal(),
		AWSSecretAccessKey: d.AWSSecretAccessKey.Reveal(), AWSSessionToken: d.AWSSessionToken.Reveal(),
		AWSRoleARN: d.AWSRoleARN, AWSWebIdentityTokenFile: d.AWSWebIdentityTokenFile,
		AWSRoleSessionName: d.AWSRoleSessionName, AWSSTSEndpoint: d.AWSSTSEndpoint,
		AWSContainerCredentialsURI: d.AWSContainerCredentialsURI, AWSContainerAuthTokenFile: d.AWSContainerAuthTokenFile,
		VertexProject: d.VertexProject, VertexLocation: d.VertexLocation, VertexCredentials: d.VertexCredentials.Reveal(),
	}
}

const serviceAccount = `{"type":"service_account","project_id":"p","client_email":"sa@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n","token_uri":"https://oauth2.googleapis.com/token"}`

func TestParseCloudProviders(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, []byte(serviceAccount), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params string
		env    map[string]string
		want   cloudFields
	}{
		{
			name:   "bedrock from litellm_params",
			params: `{model: bedrock/anthropic.claude-3-haiku, aws_region_name: eu-west-1, aws_access_key_id: AKIA1, aws_secret_access_key: s1, aws_session_token: t1}`,
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "AKIA-env", "AWS_REGION": "us-east-1"},
			want: cloudFields{APIBase: "https://bedrock-runtime.eu-west-1.amazonaws.com", AWSRegion: "eu-west-1",
				AWSAccessKeyID: "AKIA1", AWSSecretAccessKey: "s1", AWSSessionToken: "t1"},
		},
		{
			name:   "bedrock from the environment, AWS_REGION before AWS_DEFAULT_REGION",
			params: `{model: bedrock/anthropic.claude-3-haiku}`,
			env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIA-env", "AWS_SECRET_ACCESS_KEY": "s-env", "AWS_SESSION_TOKEN": "t-env",
				"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "us-west-2"},
			want: cloudFields{APIBase: "https://bedrock-runtime.us-east-2.amazonaws.com", AWSRegion: "us-east-2",
				AWSAccessKeyID: "AKIA-env", AWSSecretAccessKey: "s-env", AWSSessionToken: "t-env"},
		},
		{
			name:   "bedrock region from AWS_DEFAULT_REGION, api_base kept",
			params: `{model: bedrock/m, api_base: "http://127.0.0.1:9000/", aws_access_key_id: A, aws_secret_access_key: S}`,
			env:    map[string]string{"AWS_DEFAULT_REGION": "ap-south-1"},
			want:   cloudFields{APIBase: "http://127.0.0.1:9000", AWSRegion: "ap-south-1", AWSAccessKeyID: "A", AWSSecretAccessKey: "S"},
		},
		{
			name:   "bedrock API key: the AWS environment is not used",
			params: `{model: bedrock/m, api_key: bedrock-api-key, aws_region_name: us-east-1}`,
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "AKIA-env", "AWS_SECRET_ACCESS_KEY": "s-env"},
			want:   cloudFields{APIBase: "https://bedrock-runtime.us-east-1.amazonaws.com", AWSRegion: "us-east-1"},
		},
		{
			name:   "bedrock with a web identity (IRSA)",
			params: `{model: bedrock/anthropic.claude-3-haiku}`,
			env: map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/tollgate", "AWS_REGION": "eu-west-1",
				"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
			want: cloudFields{APIBase: "https://bedrock-runtime.eu-west-1.amazonaws.com", AWSRegion: "eu-west-1",
				AWSRoleARN: "arn:aws:iam::123456789012:role/tollgate", AWSRoleSessionName: "tollgate",
				AWSWebIdentityTokenFile: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
				AWSSTSEndpoint:          "https://sts.eu-west-1.amazonaws.com"},
		},
		{
			name:   "bedrock web identity with a session name and an STS endpoint",
			params: `{model: bedrock/anthropic.claude-3-haiku, aws_region_name: us-east-1}`,
			env: map[string]string{"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t",
				"AWS_ROLE_SESSION_NAME": "pod-7", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9002"},
			want: cloudFields{APIBase: "https://bedrock-runtime.us-east-1.amazonaws.com", AWSRegion: "us-east-1",
				AWSRoleARN: "arn:aws:iam::1:role/r", AWSWebIdentityTokenFile: "/t", AWSRoleSessionName: "pod-7",
				AWSSTSEndpoint: "http://127.0.0.1:9002"},
		},
		{
			name:   "bedrock with EKS Pod Identity",
			params: `{model: bedrock/anthropic.claude-3-haiku, aws_region_name: us-east-1}`,
			env: map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
				"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
			want: cloudFields{APIBase: "https://bedrock-runtime.us-east-1.amazonaws.com", AWSRegion: "us-east-1",
				AWSContainerCredentialsURI: "http://169.254.170.23/v1/credentials",
				AWSContainerAuthTokenFile:  "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
		},
		{
			name:   "bedrock with an ECS task role",
			params: `{model: bedrock/anthropic.claude-3-haiku, aws_region_name: us-east-1}`,
			env:    map[string]string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc"},
			want: cloudFields{APIBase: "https://bedrock-runtime.us-east-1.amazonaws.com", AWSRegion: "us-east-1",
				AWSContainerCredentialsURI: "http://169.254.170.2/v2/credentials/abc"},
		},
		{
			name:   "vertex with a key file and the default location",
			params: `{model: vertex_ai/gemini-2.5-pro, vertex_project: proj-1, vertex_credentials: ` + keyFile + `}`,
			want: cloudFields{APIBase: "https://us-central1-aiplatform.googleapis.com", VertexProject: "proj-1",
				VertexLocation: "us-central1", VertexCredentials: serviceAccount},
		},
		{
			name:   "vertex with the key's JSON from a variable",
			params: `{model: vertex_ai/gemini-2.5-pro, vertex_project: proj-1, vertex_location: europe-west4, vertex_credentials: os.environ/SA_JSON}`,
			env:    map[string]string{"SA_JSON": serviceAccount},
			want: cloudFields{APIBase: "https://europe-west4-aiplatform.googleapis.com", VertexProject: "proj-1",
				VertexLocation: "europe-west4", VertexCredentials: serviceAccount},
		},
		{
			name:   "vertex from the environment",
			params: `{model: vertex_ai/gemini-2.5-pro, api_base: "http://127.0.0.1:9001"}`,
			env:    map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": keyFile, "VERTEXAI_PROJECT": "proj-env", "VERTEXAI_LOCATION": "global"},
			want: cloudFields{APIBase: "http://127.0.0.1:9001", VertexProject: "proj-env", VertexLocation: "global",
				VertexCredentials: serviceAccount},
		},
		{
			name:   "vertex express mode",
			params: `{model: vertex_ai/gemini-2.5-flash, api_key: AQ.express}`,
			env:    map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": keyFile},
			want:   cloudFields{APIBase: "https://aiplatform.googleapis.com", VertexLocation: "us-central1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte("model_list:\n  - model_name: m\n    litellm_params: "+tc.params+"\n"), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cloudOf(cfg.Deployments[0])); diff != "" {
				t.Errorf("deployment (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCloudProviderErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	userCreds := write("user.json", `{"type":"authorized_user","client_id":"x","client_secret":"secret-do-not-print","refresh_token":"r"}`)
	broken := write("broken.json", `{"type":"service_account","private_key":"secret-do-not-print"`)
	const at = "line 3: model_list[0].litellm_params"
	tests := []struct {
		name   string
		params string
		env    map[string]string
		want   []string
	}{
		{
			name:   "bedrock without region",
			params: `{model: bedrock/m, aws_access_key_id: A, aws_secret_access_key: S}`,
			want:   []string{at + ".aws_region_name: required for provider bedrock: the AWS region to send to and sign for (or set AWS_REGION_NAME, AWS_REGION, AWS_DEFAULT_REGION)"},
		},
		{
			name:   "bedrock without credentials",
			params: `{model: bedrock/m, aws_region_name: us-east-1}`,
			want: []string{at + ": provider bedrock needs AWS credentials: set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), " +
				"api_key for a Bedrock API key, a web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, as IRSA on EKS sets them) or " +
				"container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI, as EKS Pod Identity and ECS set it); " +
				"AWS profiles and instance roles are not supported"},
		},
		{
			name:   "bedrock container credentials over plain http elsewhere",
			params: `{model: bedrock/m, aws_region_name: us-east-1}`,
			env:    map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://creds.example/v1"},
			want: []string{at + `: AWS_CONTAINER_CREDENTIALS_FULL_URI "http://creds.example/v1" must be https, ` +
				"or http to a loopback address or the ECS or EKS credentials address"},
		},
		{
			name:   "bedrock key id without secret",
			params: `{model: bedrock/m, aws_region_name: us-east-1, aws_access_key_id: A}`,
			env:    map[string]string{"AWS_SECRET_ACCESS_KEY": "not-mixed-in"},
			want:   []string{at + ".aws_secret_access_key: required with aws_access_key_id"},
		},
		{
			name:   "bedrock environment key id without secret",
			params: `{model: bedrock/m}`,
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "A", "AWS_REGION": "us-east-1"},
			want:   []string{at + ".aws_secret_access_key: required: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"},
		},
		{
			name:   "bedrock region that is not a host name part",
			params: `{model: bedrock/m, aws_access_key_id: A, aws_secret_access_key: S}`,
			env:    map[string]string{"AWS_REGION": "evil.example/"},
			want:   []string{at + `.aws_region_name (from AWS_REGION): "evil.example/" is not an AWS region name`},
		},
		{
			name:   "vertex without project and credentials",
			params: `{model: vertex_ai/gemini-2.5-pro}`,
			want: []string{
				at + ".vertex_project: required for provider vertex_ai (or set VERTEXAI_PROJECT)",
				at + ".vertex_credentials: required for provider vertex_ai: a service-account key file or its JSON (or set GOOGLE_APPLICATION_CREDENTIALS), or api_key for Vertex AI express mode",
			},
		},
		{
			name:   "vertex Claude in express mode",
			params: `{model: vertex_ai/claude-sonnet-4@20250514, api_key: AQ.express}`,
			want:   []string{at + ".vertex_credentials: required for Claude models on Vertex AI (claude-sonnet-4@20250514): a service-account key file or its JSON (or set GOOGLE_APPLICATION_CREDENTIALS); express mode's api_key serves Google's models only"},
		},
		{
			name:   "vertex key file missing",
			params: `{model: vertex_ai/g, vertex_project: p, vertex_credentials: ` + filepath.Join(dir, "nope.json") + `}`,
			want: []string{at + ".vertex_credentials: key file " + filepath.Join(dir, "nope.json") +
				" does not exist (the setting takes a service-account key file or its JSON)"},
		},
		{
			name:   "vertex user credentials from the environment",
			params: `{model: vertex_ai/g, vertex_project: p}`,
			env:    map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": userCreds},
			want: []string{at + `.vertex_credentials (from GOOGLE_APPLICATION_CREDENTIALS): holds "authorized_user" credentials; ` +
				"tollgate needs a service-account key (type service_account)"},
		},
		{
			name:   "vertex key that is not JSON",
			params: `{model: vertex_ai/g, vertex_project: p, vertex_credentials: ` + broken + `}`,
			want:   []string{at + ".vertex_credentials: is not valid JSON (syntax error at byte 61)"},
		},
		{
			name:   "vertex location that is not a host name part",
			params: `{model: vertex_ai/g, vertex_project: p, vertex_location: "us central", vertex_credentials: ` + broken + `}`,
			want: []string{
				at + ".vertex_credentials: is not valid JSON (syntax error at byte 61)",
				at + `.vertex_location: "us central" is not a Vertex AI location`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("model_list:\n  - model_name: m\n    litellm_params: "+tc.params+"\n"), envOf(tc.env))
			if diff := cmp.Diff(tc.want, problems(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if err != nil && strings.Contains(err.Error(), "secret-do-not-print") {
				t.Errorf("a credential reached the message: %v", err)
			}
		})
	}
}
