package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/keys"
	"github.com/tollgate-dev/tollgate/spend"
)

// gateway is tollgate's own servers: the ext_proc gRPC server Envoy streams requests
// through, and the admin HTTP server Envoy routes admin and health paths to.
type gateway struct {
	grpc      *grpc.Server
	proc      *extproc.Server
	admin     *http.Server
	stores    *stores // nil without a database_url
	grpcAddr  string  // as envoy.yaml names it: host:port or unix:/path
	adminAddr string
	done      chan error
}

// gatewayOptions are what serve and dev share.
type gatewayOptions struct {
	grpcListen, adminListen string
	pricesFile              string // a LiteLLM model_prices_and_context_window.json, over the built-in prices
	spoolDir                string
	serveCachedKeys         bool // keys.Options.ServeCachedWhenRedisDown
}

// startGateway opens the stores, then listens on both addresses and serves until
// shutdown.
func startGateway(ctx context.Context, cfg *config.Config, o gatewayOptions, logger *slog.Logger) (_ *gateway, err error) {
	prices := spend.Builtin()
	if o.pricesFile != "" {
		f, err := os.Open(o.pricesFile)
		if err != nil {
			return nil, fmt.Errorf("--prices: %w", err)
		}
		custom, err := spend.LoadLiteLLM(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--prices %s: %w", o.pricesFile, err)
		}
		prices = prices.Merge(custom)
	}
	unpriced := prices.Unpriced(cfg)
	if len(unpriced) > 0 {
		logger.Warn("deployments with no known price: their requests are recorded with cost unknown; set input_cost_per_token/output_cost_per_token or base_model",
			"deployments", unpriced)
	}
	pricebook := spend.NewPricebook(prices, cfg)
	master := extproc.NewMasterKey(cfg.MasterKey.Reveal())
	deps := extproc.Deps{Auth: master, Pricer: pricebook}
	g := &gateway{done: make(chan error, 2)}
	mux := adminMux()
	if cfg.DatabaseURL != "" {
		if o.spoolDir == "" {
			o.spoolDir = defaultSpoolDir()
		}
		if g.stores, err = openStores(ctx, cfg, os.LookupEnv, o, logger); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				g.stores.close(context.Background())
			}
		}()
		deps.Auth = keyAuth{master: master, store: g.stores.keys}
		deps.Limits = keyLimits{store: g.stores.keys, masterHash: keys.Hash(cfg.MasterKey.Reveal())}
		deps.Spend = spendSink{g.stores.writer}
		g.stores.adminRoutes(mux, cfg.MasterKey.Reveal())
	} else {
		logger.Warn("no general_settings.database_url: only the master key is accepted, and spend is not recorded")
	}
	var writer *spend.Writer
	if g.stores != nil {
		writer = g.stores.writer
	}
	mux.Handle("GET /metrics", metricsHandler(writer, unpriced))
	proc, err := extproc.New(cfg, deps, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			proc.Close()
		}
	}()
	g.proc = proc
	gl, err := listen(o.grpcListen)
	if err != nil {
		return nil, fmt.Errorf("ext_proc gRPC server: %w", err)
	}
	al, err := listen(o.adminListen)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("admin HTTP server: %w", err)
	}
	g.grpc = grpc.NewServer(proc.ServerOptions()...)
	g.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	g.grpcAddr, g.adminAddr = addrString(gl), addrString(al)
	proc.Register(g.grpc)
	go func() { g.done <- g.grpc.Serve(gl) }()
	go func() {
		if err := g.admin.Serve(al); !errors.Is(err, http.ErrServerClosed) {
			g.done <- err
		}
	}()
	logger.Info("tollgate serving", "grpc", g.grpcAddr, "admin", g.adminAddr, "models", len(cfg.Aliases()))
	return g, nil
}

// wait returns when ctx is cancelled (then shuts down gracefully) or a server fails.
func (g *gateway) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		g.shutdown()
		return nil
	case err := <-g.done:
		g.shutdown()
		return err
	}
}

// shutdown lets in-flight streams finish, then drains spend records to Postgres (or the
// spool), within shutdownTimeout.
func (g *gateway) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	stopped := make(chan struct{})
	go func() { g.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		g.grpc.Stop()
	}
	g.proc.Close()
	g.admin.Shutdown(ctx)
	if g.stores != nil {
		g.stores.close(ctx)
	}
}

// listen opens "host:port" (TCP) or "unix:/path" (a Unix socket, replacing a stale one).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

func addrString(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}
