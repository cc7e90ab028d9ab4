package extproc

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		path string
		want route
	}{
		{"/v1/chat/completions", route{kind: routeInference, ep: translate.ChatCompletions}},
		{"/chat/completions", route{kind: routeInference, ep: translate.ChatCompletions}},
		{"/v1/chat/completions?x=1", route{kind: routeInference, ep: translate.ChatCompletions}},
		{"/v1/completions/", route{kind: routeInference, ep: translate.Completions}},
		{"/embeddings", route{kind: routeInference, ep: translate.Embeddings}},
		{"/openai/deployments/gpt-5.5/chat/completions?api-version=2024-10-21",
			route{kind: routeInference, ep: translate.ChatCompletions, model: "gpt-5.5"}},
		{"/openai/deployments/my%20model/embeddings", route{kind: routeInference, ep: translate.Embeddings, model: "my model"}},
		{"/openai/deployments//chat/completions", route{}},
		{"/openai/deployments/x/images", route{}},
		{"/v1/models", route{kind: routeModels}},
		{"/models?limit=5", route{kind: routeModels}},
		{"/v1/models/meta-llama/Llama-3.1-8B", route{kind: routeModel, model: "meta-llama/Llama-3.1-8B"}},
		{"/v1/models/", route{kind: routeModels}},
		{"/health/liveliness", route{kind: routeLiveness}},
		{"/health/liveness", route{kind: routeLiveness}},
		{"/health/readiness", route{kind: routeReadiness}},
		{"/health", route{}},
		{"/v1models", route{}},
		{"/v2/chat/completions", route{}},
		{"", route{}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parsePath(tc.path), cmp.AllowUnexported(route{})); diff != "" {
				t.Errorf("parsePath(%q) (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}
