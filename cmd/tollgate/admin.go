package main

import (
	"net/http"

	"github.com/tollgate-dev/tollgate/translate"
)

// adminMux is tollgate's admin HTTP server: health probes for orchestrators (LiteLLM's
// paths) and OpenAI-style errors for unknown paths; the stores add the admin API.
func adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/liveliness", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`"I'm alive!"`))
	})
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"healthy"}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, translate.StatusError(http.StatusNotFound,
			"tollgate has no admin endpoint "+r.Method+" "+r.URL.Path))
	})
	return mux
}

func writeError(w http.ResponseWriter, e *translate.APIError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(e.JSON())
}
