package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// TestEndToEndSpendSurvivesSIGTERM runs the tollgate binary, as a deployment does, and
// sends it SIGTERM while eight clients keep sending requests: it exits 0 within the
// shutdown bound, every request a client got an answer for has exactly one spend record,
// and nothing is left in the spool.
func TestEndToEndSpendSurvivesSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tollgate and runs it under load")
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbURL := storesForTest(t)
	_, srv := providertest.StartOpenAI(t, "")
	dir := t.TempDir()
	configPath, spoolDir := filepath.Join(dir, "config.yaml"), filepath.Join(dir, "spool")
	if err := os.WriteFile(configPath, []byte(meteredConfig(srv.URL, dbURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := startProcess(t, bin, "dev", "--config", configPath, "--listen", "127.0.0.1:0", "--spool-dir", spoolDir)

	// Eight clients send requests back to back until the gateway stops answering.
	const workers, beforeSignal = 8, 3_000
	var (
		mu             sync.Mutex
		answered       = map[string]bool{} // request ids of the 200 responses
		afterSignal    int                 // of those, answered after SIGTERM was sent
		signalled      bool
		failures       []string // what requests got before SIGTERM, other than a 200
		wg             sync.WaitGroup
		client         = loadClient(workers)
		enoughAnswered = make(chan struct{})
	)
	for range workers {
		wg.Go(func() {
			for {
				status, id, err := postChat(client, tg.url, masterKey)
				mu.Lock()
				stopping := signalled
				switch {
				case err != nil && stopping:
					mu.Unlock()
					return // the gateway is gone
				case err != nil:
					failures = append(failures, err.Error())
				case status == http.StatusOK && id != "":
					answered[id] = true
					if stopping {
						afterSignal++
					}
					if len(answered) == beforeSignal {
						close(enoughAnswered)
					}
				case !stopping:
					failures = append(failures, fmt.Sprintf("status %d, request id %q", status, id))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	select {
	case <-enoughAnswered:
	case <-tg.exited:
		t.Fatal("tollgate exited under load")
	case <-time.After(30 * time.Second):
		t.Fatalf("fewer than %d requests answered in 30s", beforeSignal)
	}
	mu.Lock()
	signalled = true
	mu.Unlock()
	signalledAt := time.Now()
	if err := tg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	const bound = 30 * time.Second
	select {
	case <-tg.exited:
		if tg.err != nil {
			t.Errorf("tollgate exited with %v after SIGTERM, want status 0", tg.err)
		}
	case <-time.After(bound):
		tg.cmd.Process.Kill()
		<-tg.exited
		t.Errorf("tollgate did not exit within %s of SIGTERM", bound)
	}
	exitedAfter := time.Since(signalledAt)
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("%d requests failed before SIGTERM; the first: %s", len(failures), failures[0])
	}
	records := recordCounts(t, dbURL)
	missing, duplicated := 0, 0
	for id := range answered {
		if records[id] == 0 {
			missing++
		}
	}
	for _, n := range records {
		if n > 1 {
			duplicated++
		}
	}
	if missing > 0 || duplicated > 0 {
		t.Errorf("%d requests answered: %d have no spend record; %d request ids have more than one record",
			len(answered), missing, duplicated)
	}
	// Close replays the spool into Postgres before tollgate exits when Postgres is up,
	// as here: a segment left behind is records that reached neither.
	if left := spoolSegments(t, spoolDir); len(left) > 0 {
		t.Errorf("the spool still holds %d segments after a clean exit: %v", len(left), left)
	}
	t.Logf("%d requests answered (%d after SIGTERM), %d request ids recorded; exited %s after SIGTERM",
		len(answered), afterSignal, len(records), exitedAfter.Round(time.Millisecond))
}

// process is a tollgate binary running until the test ends.
type process struct {
	cmd    *exec.Cmd
	url    string        // the gateway's, from the line `tollgate dev` prints when listening
	exited chan struct{} // closed once the process has exited; then err is its Wait error
	err    error
}

// startProcess runs bin with args and waits until it prints where it listens. Its
// stderr goes to the test log if the test fails; it is killed if still running when
// the test ends.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stdout, w := io.Pipe()
	var logs bytes.Buffer
	stderr := &syncWriter{w: &logs}
	p.cmd.Stdout, p.cmd.Stderr = w, stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		w.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			stderr.mu.Lock()
			defer stderr.mu.Unlock()
			t.Logf("%s stderr:\n%s", filepath.Base(bin), logs.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s did not start: %v", filepath.Base(bin), err)
	}
	go io.Copy(io.Discard, stdout)
	_, rest, _ := strings.Cut(line, "http://")
	addr, _, _ := strings.Cut(rest, " ")
	p.url = "http://" + addr
	return p
}
