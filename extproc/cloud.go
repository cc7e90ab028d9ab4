package extproc

import (
	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/translate"
)

// addCloudCredentials gives bedrock/ and vertex_ai/ deployments what their requests are
// signed or authenticated with, as config.Load resolved it: the AWS access key SigV4
// signs with, the web identity or container credentials endpoint whose temporary
// credentials awsWebIdentity or awsContainerCredentials keeps current, or the
// service-account key whose access tokens googleToken keeps current.
// A Bedrock API key or a Vertex AI express-mode key travels as the api_key instead.
func (dep *deployment) addCloudCredentials(d *config.Deployment) {
	switch d.Provider {
	case "bedrock":
		switch {
		case d.AWSAccessKeyID != "":
			dep.target.AWS = &translate.AWSCredentials{
				Region:          d.AWSRegion,
				AccessKeyID:     d.AWSAccessKeyID.Reveal(),
				SecretAccessKey: d.AWSSecretAccessKey.Reveal(),
				SessionToken:    d.AWSSessionToken.Reveal(),
			}
		case d.AWSRoleARN != "" && d.APIKey == "":
			dep.cred = awsWebIdentity(d.ID, dep.target, d.AWSRegion, d.AWSSTSEndpoint, d.AWSRoleARN, d.AWSRoleSessionName, d.AWSWebIdentityTokenFile)
		case d.AWSContainerCredentialsURI != "" && d.APIKey == "":
			dep.cred = awsContainerCredentials(d.ID, dep.target, d.AWSRegion, d.AWSContainerCredentialsURI, d.AWSContainerAuthTokenFile, d.AWSContainerAuthToken.Reveal())
		}
	case "vertex_ai":
		if d.VertexCredentials != "" {
			dep.target.Google = &translate.GoogleCredentials{Project: d.VertexProject, Location: d.VertexLocation}
			dep.cred = googleToken(d.ID, []byte(d.VertexCredentials.Reveal()), dep.target)
		}
	}
}
