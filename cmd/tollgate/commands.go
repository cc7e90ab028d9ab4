package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/envoy/emulator"
	"github.com/tollgate-dev/tollgate/spend"
	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// Default addresses of tollgate's own servers, next to Envoy.
const (
	defaultGRPC  = "127.0.0.1:9002"
	defaultAdmin = "127.0.0.1:9003"
)

func flags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("config", "config.yaml", "LiteLLM-compatible config.yaml")
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// loadConfig loads config.yaml from the process environment and logs its warnings.
func loadConfig(path string, logger *slog.Logger) (*config.Config, error) {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	return cfg, nil
}

// serve runs tollgate behind a real Envoy.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs, configPath := flags("serve", stderr)
	var o gatewayOptions
	fs.StringVar(&o.grpcListen, "grpc-listen", defaultGRPC, "ext_proc gRPC address: host:port or unix:/path")
	fs.StringVar(&o.adminListen, "admin-listen", defaultAdmin, "admin and health HTTP address: host:port or unix:/path")
	storeFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr)
	cfg, err := loadConfig(*configPath, logger)
	if err != nil {
		return err
	}
	g, err := startGateway(ctx, cfg, o, logger)
	if err != nil {
		return err
	}
	return g.wait(ctx)
}

// storeFlags are the flags of the commands that run tollgate's servers.
func storeFlags(fs *flag.FlagSet, o *gatewayOptions) {
	fs.StringVar(&o.pricesFile, "prices", "", "model prices in LiteLLM's model_prices_and_context_window.json format, over the built-in table")
	fs.StringVar(&o.spoolDir, "spool-dir", "", "where spend records wait while Postgres is down (default: the user cache directory)")
	fs.BoolVar(&o.serveCachedKeys, "serve-cached-keys-when-redis-down", false,
		"while Redis is down, keep accepting keys verified recently (from memory, budgets unchecked) instead of answering 503")
}

// renderEnvoy prints the envoy.yaml for a config.
func renderEnvoy(args []string, stdout, stderr io.Writer) error {
	fs, configPath := flags("envoy", stderr)
	var o envoy.RenderOptions
	fs.StringVar(&o.Listen, "listen", "0.0.0.0:10000", "Envoy listener address (ip:port)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate file for the listener, as Envoy sees it")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key file for the listener, as Envoy sees it")
	fs.StringVar(&o.GRPCAddr, "grpc-addr", defaultGRPC, "where Envoy reaches tollgate's ext_proc server: host:port or unix:/path")
	fs.StringVar(&o.AdminAddr, "admin-addr", defaultAdmin, "where Envoy reaches tollgate's admin server: host:port or unix:/path")
	fs.StringVar(&o.UpstreamCA, "upstream-ca", "", "CA bundle Envoy verifies providers against (default /etc/ssl/certs/ca-certificates.crt)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, newLogger(stderr))
	if err != nil {
		return err
	}
	b, err := envoy.Render(cfg, o)
	if err != nil {
		return err
	}
	out, err := envoy.MarshalYAML(b)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// check validates config.yaml and, with --envoy, envoy.yaml and their agreement,
// printing every problem.
func check(args []string, stdout, stderr io.Writer) error {
	fs, configPath := flags("check", stderr)
	envoyPath := fs.String("envoy", "", "envoy.yaml to validate against the config")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []error
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		problems = append(problems, err)
	} else {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		for _, id := range spend.Builtin().Unpriced(cfg) {
			fmt.Fprintf(stdout, "warning: deployment %s has no known price: its requests are recorded with cost unknown and budgets do not count them; set input_cost_per_token and output_cost_per_token, or model_info.base_model\n", id)
		}
	}
	if *envoyPath != "" {
		if err := checkEnvoy(*envoyPath, cfg); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		n := 0
		for _, line := range strings.Split(errors.Join(problems...).Error(), "\n") {
			fmt.Fprintf(stdout, "error: %s\n", line)
			n++
		}
		return fmt.Errorf("check failed: %d problem(s)", n)
	}
	fmt.Fprintf(stdout, "ok: %s", *configPath)
	if *envoyPath != "" {
		fmt.Fprintf(stdout, " and %s", *envoyPath)
	}
	fmt.Fprintln(stdout)
	return nil
}

// checkEnvoy validates an envoy.yaml, and that it serves cfg when cfg loaded.
func checkEnvoy(path string, cfg *config.Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b, err := envoy.Parse(data)
	if err != nil {
		return err
	}
	errs := []error{envoy.Validate(b)}
	if cfg != nil {
		errs = append(errs, envoy.Check(cfg, b))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// dev runs a whole gateway in one process: tollgate's servers, and the Envoy emulator in
// front of them driven by the very envoy.yaml `tollgate envoy` renders.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := flags("dev", stderr)
	listenAddr := fs.String("listen", "127.0.0.1:4000", "where clients connect (ip:port)")
	fake := fs.String("fake-provider", "", "also serve a fake OpenAI-compatible provider on this address (for configs whose api_base points at it)")
	envoyOut := fs.String("write-envoy", "", "write the envoy.yaml the emulator runs to this file")
	var o gatewayOptions
	storeFlags(fs, &o)
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(stderr)
	cfg, err := loadConfig(*configPath, logger)
	if err != nil {
		return err
	}
	if *fake != "" {
		stop, err := serveFakeProvider(*fake)
		if err != nil {
			return err
		}
		defer stop()
		logger.Info("fake OpenAI-compatible provider serving", "addr", *fake)
	}
	dir, err := os.MkdirTemp("", "tollgate-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Bind the client listener first, so --listen 127.0.0.1:0 renders the real port.
	ln, err := net.Listen("tcp", *listenAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	o.grpcListen, o.adminListen = "unix:"+dir+"/extproc.sock", "127.0.0.1:0"
	g, err := startGateway(ctx, cfg, o, logger)
	if err != nil {
		return err
	}
	defer g.shutdown()
	// Round-trip through YAML so the emulator runs exactly what `tollgate envoy` prints.
	b, err := envoy.Render(cfg, envoy.RenderOptions{Listen: ln.Addr().String(), GRPCAddr: g.grpcAddr, AdminAddr: g.adminAddr})
	if err != nil {
		return err
	}
	yml, err := envoy.MarshalYAML(b)
	if err != nil {
		return err
	}
	if *envoyOut != "" {
		if err := os.WriteFile(*envoyOut, yml, 0o644); err != nil {
			return err
		}
	}
	if b, err = envoy.Parse(yml); err == nil {
		err = errors.Join(envoy.Validate(b), envoy.Check(cfg, b))
	}
	if err != nil {
		return fmt.Errorf("rendered envoy.yaml: %w", err)
	}
	em, err := emulator.New(b, emulator.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer em.Close()
	served := make(chan error, 1)
	go func() { served <- em.Serve(ctx, ln) }()
	fmt.Fprintf(stdout, "tollgate dev: gateway listening on http://%s (models: %s)\n", ln.Addr(), strings.Join(cfg.Aliases(), ", "))
	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		if err == nil || ctx.Err() != nil {
			return nil // stopped because ctx was cancelled: a clean shutdown
		}
		return fmt.Errorf("emulator: %w", err)
	case err := <-g.done:
		return err
	}
}

// serveFakeProvider serves providertest.OpenAI on addr, accepting any key.
func serveFakeProvider(addr string) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake provider: %w", err)
	}
	srv := &http.Server{Handler: &providertest.OpenAI{}, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return func() { srv.Close() }, nil
}
