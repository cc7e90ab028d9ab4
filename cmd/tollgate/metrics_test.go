package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsNameUnpricedDeployments(t *testing.T) {
	rec := httptest.NewRecorder()
	metricsHandler(nil, []string{"mystery-0"}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"tollgate_unpriced_deployments 1\n", `tollgate_unpriced_deployment{deployment="mystery-0"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
