package main

import (
	"fmt"
	"net/http"

	"github.com/tollgate-dev/tollgate/spend"
)

// metricsHandler serves /metrics in Prometheus's text format on the admin server (not on
// the public listener): the spend writer's counters and the deployments with no price.
func metricsHandler(writer *spend.Writer, unpriced []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metric := func(name, typ, help string, v any) {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
		}
		metric("tollgate_unpriced_deployments", "gauge", "Deployments with no known price: their spend is recorded as unknown.", len(unpriced))
		for _, id := range unpriced {
			fmt.Fprintf(w, "tollgate_unpriced_deployment{deployment=%q} 1\n", id)
		}
		if writer == nil {
			return
		}
		s := writer.Stats()
		metric("tollgate_spend_records_written_total", "counter", "Spend records inserted into Postgres.", s.Written)
		metric("tollgate_spend_records_duplicate_total", "counter", "Spend records Postgres already had (replays).", s.Duplicates)
		metric("tollgate_spend_records_spooled_total", "counter", "Spend records written to the durable spool.", s.Spooled)
		metric("tollgate_spend_records_replayed_total", "counter", "Spooled spend records committed to Postgres.", s.Replayed)
		metric("tollgate_spend_records_rejected_total", "counter", "Spend records Postgres refused (kept in rejected.jsonl).", s.Rejected)
		metric("tollgate_spend_records_dropped_total", "counter", "Spend records lost.", s.Dropped)
		metric("tollgate_spend_spool_corrupt_tails_total", "counter", "Torn or corrupt spool tails skipped.", s.CorruptTails)
		metric("tollgate_spend_queue_length", "gauge", "Spend records waiting in memory.", s.Queued)
		metric("tollgate_spend_postgres_down", "gauge", "1 while Postgres is failing.", boolMetric(s.PostgresDown))
	})
}

func boolMetric(b bool) int {
	if b {
		return 1
	}
	return 0
}
