package spend

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"testing"
	"time"
)

// BenchmarkWriterThroughput measures records per second end to end: from the first
// Enqueue until Close returns with every record committed to Postgres (partitioned
// table, seven indexes, daily rollups). writers=2 shards the records over two Writers
// (two spool directories), so that Postgres works on two batches at once. Run with a
// fixed count, e.g.
//
//	go test ./spend -run '^$' -bench WriterThroughput -benchtime 200000x
func BenchmarkWriterThroughput(b *testing.B) {
	for _, bc := range []struct{ batch, writers int }{{1000, 1}, {5000, 1}, {5000, 2}} {
		b.Run(fmt.Sprintf("batch=%d/writers=%d", bc.batch, bc.writers), func(b *testing.B) {
			s := newTestSchema(b)
			recs := makeRecords(0, b.N, testBase)
			for i := range recs {
				recs[i].RequestID = uuidV4() // as Envoy makes them: random, not in insert order
			}
			ws := make([]*Writer, bc.writers)
			for i := range ws {
				w, err := NewWriter(s.pool, Options{
					SpoolDir:  b.TempDir(),
					BatchSize: bc.batch,
					QueueSize: 4 * bc.batch, // never full: measure Postgres, not the overflow spool
					Logger:    testLogger(testWriter{b}),
				})
				if err != nil {
					b.Fatal(err)
				}
				ws[i] = w
			}
			// Every run starts from a checkpoint, so each pays the same full-page
			// writes: without it, whether a checkpoint lands inside a run decides
			// much of its time.
			ctx := context.Background()
			if _, err := s.pool.Exec(ctx, `CHECKPOINT`); err != nil {
				b.Fatal(err)
			}
			walStart := walLSN(b, s)
			b.ResetTimer()
			start := time.Now()
			for i := range recs {
				w := ws[i%len(ws)]
				w.Enqueue(recs[i])
				// Producers at the writer's pace: a queue grown to b.N records would
				// spend the CPU Postgres needs on copying it.
				for i%bc.batch < len(ws) && w.Stats().Queued > 2*bc.batch {
					time.Sleep(100 * time.Microsecond)
				}
			}
			ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			defer cancel()
			var written, spooled int64
			for _, w := range ws {
				if err := w.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			var lastErr string
			for _, w := range ws {
				st := w.Stats()
				written, spooled, lastErr = written+st.Written, spooled+st.Spooled, st.LastError+lastErr
			}
			if written != int64(b.N) || spooled != 0 {
				b.Fatalf("%d written, %d spooled (%s); want %d written straight to Postgres", written, spooled, lastErr, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(walLSN(b, s)-walStart)/float64(b.N), "WAL-B/record")
		})
	}
}

// walLSN returns Postgres's current write-ahead log position, in bytes.
func walLSN(b *testing.B, s *testSchema) int64 {
	var lsn int64
	err := s.pool.QueryRow(context.Background(),
		`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&lsn)
	if err != nil {
		b.Fatal(err)
	}
	return lsn
}

// uuidV4 returns a random version 4 UUID.
func uuidV4() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// BenchmarkEnqueue measures the request path's cost: sanitising a record and queueing
// it. The queue is emptied outside the timer, so nothing is flushed meanwhile.
func BenchmarkEnqueue(b *testing.B) {
	s := newTestSchema(b)
	const chunk = 10_000
	w, err := NewWriter(s.pool, Options{
		SpoolDir: b.TempDir(), BatchSize: chunk + 1, QueueSize: chunk + 1,
		FlushInterval: time.Hour, Logger: testLogger(testWriter{b}),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer closeWriter(b, w)
	recs := makeRecords(0, chunk, testBase)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%chunk == 0 && i > 0 {
			b.StopTimer()
			w.release(w.take())
			b.StartTimer()
		}
		w.Enqueue(recs[i%chunk])
	}
	b.StopTimer()
	w.release(w.take())
}

// BenchmarkSpoolAppend measures spooling, as when Postgres is down: batches of 1000
// records appended and fsync'd.
func BenchmarkSpoolAppend(b *testing.B) {
	sp, err := openSpool(b.TempDir(), testLogger(testWriter{b}))
	if err != nil {
		b.Fatal(err)
	}
	defer sp.close()
	const batch = 1000
	recs := normalized(makeRecords(0, batch, testBase))
	frame, _ := appendFrame(nil, &recs[0])
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		if err := sp.append(recs[:n]); err != nil {
			b.Fatal(err)
		}
		if err := sp.sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
