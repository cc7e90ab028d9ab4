package keys

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/deploy/migrations"
)

// The tests run against the real Redis and Postgres on this machine. Isolation: one
// Postgres schema per package run (keys_test_<random>, dropped at the end), Redis database
// testDB with a key prefix per test (deleted at the end), and database flushDB, which
// only TestFlushRecovery flushes.
const (
	pgURL    = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	redisURL = "127.0.0.1:6379"
	testDB   = 11
	flushDB  = 12
	master   = "sk-master-key-for-tests"
)

var (
	testSchema string
	testPG     *pgxpool.Pool
)

func TestMain(m *testing.M) {
	if os.Getenv("KEYS_TEST_CHILD") != "" {
		os.Exit(childMain())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	testSchema = "keys_test_" + randHex(6)
	admin, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "postgres:", err)
		return 1
	}
	defer admin.Close()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+testSchema); err != nil {
		fmt.Fprintln(os.Stderr, "postgres:", err)
		return 1
	}
	defer admin.Exec(ctx, "DROP SCHEMA "+testSchema+" CASCADE")
	testPG, err = openPG(ctx, testSchema)
	if err != nil {
		fmt.Fprintln(os.Stderr, "postgres:", err)
		return 1
	}
	defer testPG.Close()
	if _, err := migrations.Apply(ctx, testPG); err != nil {
		fmt.Fprintln(os.Stderr, "migrations:", err)
		return 1
	}
	return m.Run()
}

// openPG opens a pool whose connections use schema.
func openPG(ctx context.Context, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	return pgxpool.NewWithConfig(ctx, cfg)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testOptions are fast intervals, so background work is observable in tests.
func testOptions(prefix string) Options {
	return Options{
		Prefix:        prefix,
		CheckInterval: 50 * time.Millisecond,
		ResetInterval: 200 * time.Millisecond,
	}
}

// env is one test's stores: a Redis prefix of its own over the package's schema.
type env struct {
	t      testing.TB
	prefix string
	db     int
	rdb    *redis.Client
	stores []*Store
	admin  *httptest.Server
}

// newEnv returns an env with one store (env.s()) and an admin server over it.
func newEnv(t testing.TB) *env {
	return newEnvDB(t, testDB, func(*Options) {})
}

func newEnvDB(t testing.TB, db int, tune func(*Options)) *env {
	t.Helper()
	e := &env{t: t, prefix: "keystest:" + randHex(4) + ":", db: db}
	e.rdb = redis.NewClient(&redis.Options{Addr: redisURL, DB: db})
	t.Cleanup(func() {
		ctx := context.Background()
		iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			e.rdb.Del(ctx, iter.Val())
		}
		e.rdb.Close()
	})
	e.open(tune)
	e.admin = httptest.NewServer(AdminHandler(e.s(), master))
	t.Cleanup(e.admin.Close)
	return e
}

// open adds a Store (a "replica") on the env's prefix.
func (e *env) open(tune func(*Options)) *Store {
	e.t.Helper()
	opts := testOptions(e.prefix)
	tune(&opts)
	rdb := redis.NewClient(&redis.Options{Addr: redisURL, DB: e.db})
	s, err := Open(context.Background(), testPG, rdb, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.stores = append(e.stores, s)
	e.t.Cleanup(func() {
		s.Close()
		rdb.Close()
	})
	waitFor(e.t, "Redis primed", func() bool {
		n, _ := e.rdb.Exists(context.Background(), e.prefix+"primed").Result()
		return n == 1
	})
	return s
}

// s is the env's first store.
func (e *env) s() *Store { return e.stores[0] }

// record adds spends to Postgres as the spend writer does when it stores their records.
func (e *env) record(spends ...Spend) {
	e.t.Helper()
	if err := pgx.BeginFunc(context.Background(), testPG, func(tx pgx.Tx) error {
		return AddSpend(context.Background(), tx, spends)
	}); err != nil {
		e.t.Fatal(err)
	}
}

// call makes an admin API request with key and returns the status and decoded body.
func (e *env) call(method, path, key string, body any) (int, map[string]any) {
	e.t.Helper()
	status, raw := e.callRaw(method, path, key, body)
	var m map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %s", method, path, raw)
		}
	} else {
		m = map[string]any{"_list": nil}
		var list []any
		if json.Unmarshal(raw, &list) == nil {
			m["_list"] = list
		}
	}
	return status, m
}

func (e *env) callRaw(method, path, key string, body any) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.admin.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// ok makes an admin request with the master key that must succeed.
func (e *env) ok(method, path string, body any) map[string]any {
	e.t.Helper()
	status, m := e.call(method, path, master, body)
	if status != http.StatusOK {
		e.t.Fatalf("%s %s %v: status %d: %v", method, path, body, status, m)
	}
	return m
}

// generate creates a key with the master key and returns it.
func (e *env) generate(body map[string]any) string {
	e.t.Helper()
	m := e.ok("POST", "/key/generate", body)
	return m["key"].(string)
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errCode is the OpenAI error code an error maps to, or "ok".
func errCode(err error) string {
	if err == nil {
		return "ok"
	}
	e, _ := APIError(err)
	return e.Code
}

// child is a separate OS process running a Store on the same Postgres schema and Redis
// prefix: a second tollgate replica. It answers one command per line on stdin:
//
//	auth <key>                         -> ok <key hash> | err <code>
//	reserve <hash> <cost> <tokens>     -> ok | err <code>
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func (e *env) startChild() *child {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KEYS_TEST_CHILD=1", "KEYS_TEST_SCHEMA="+testSchema,
		"KEYS_TEST_PREFIX="+e.prefix, "KEYS_TEST_DB="+strconv.Itoa(e.db))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	e.t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	if got := c.read(e.t); got != "ready" {
		e.t.Fatalf("child process: %q", got)
	}
	return c
}

func (c *child) read(t testing.TB) string {
	t.Helper()
	if !c.out.Scan() {
		t.Fatalf("child process ended: %v", c.out.Err())
	}
	return c.out.Text()
}

// do sends one command and returns the answer.
func (c *child) do(t testing.TB, format string, args ...any) string {
	t.Helper()
	if _, err := fmt.Fprintf(c.in, format+"\n", args...); err != nil {
		t.Fatal(err)
	}
	return c.read(t)
}

// childMain is the child process's main.
func childMain() int {
	ctx := context.Background()
	pg, err := openPG(ctx, os.Getenv("KEYS_TEST_SCHEMA"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	db, _ := strconv.Atoi(os.Getenv("KEYS_TEST_DB"))
	rdb := redis.NewClient(&redis.Options{Addr: redisURL, DB: db})
	s, err := Open(ctx, pg, rdb, testOptions(os.Getenv("KEYS_TEST_PREFIX")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "auth":
			k, err := s.Authenticate(ctx, f[1])
			if err != nil {
				fmt.Println("err", errCode(err))
			} else {
				fmt.Println("ok", k.KeyHash)
			}
		case len(f) == 4 && f[0] == "reserve":
			cost, _ := strconv.ParseInt(f[2], 10, 64)
			tokens, _ := strconv.ParseInt(f[3], 10, 64)
			_, err := s.Reserve(ctx, Request{KeyHash: f[1], CostMicroUSD: cost, Tokens: tokens})
			if err != nil {
				fmt.Println("err", errCode(err))
			} else {
				fmt.Println("ok")
			}
		default:
			fmt.Println("err unknown_command")
		}
	}
	return 0
}
