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
)

// gateway is tollgate's own servers: the ext_proc gRPC server Envoy streams requests
// through, and the admin HTTP server Envoy routes admin and health paths to.
type gateway struct {
	grpc      *grpc.Server
	admin     *http.Server
	grpcAddr  string // as envoy.yaml names it: host:port or unix:/path
	adminAddr string
	done      chan error
}

// startGateway listens on both addresses and serves until shutdown.
func startGateway(cfg *config.Config, grpcListen, adminListen string, logger *slog.Logger) (*gateway, error) {
	proc, err := extproc.New(cfg, extproc.NewMasterKey(cfg.MasterKey.Reveal()), logger)
	if err != nil {
		return nil, err
	}
	gl, err := listen(grpcListen)
	if err != nil {
		return nil, fmt.Errorf("ext_proc gRPC server: %w", err)
	}
	al, err := listen(adminListen)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("admin HTTP server: %w", err)
	}
	g := &gateway{
		grpc:      grpc.NewServer(proc.ServerOptions()...),
		admin:     &http.Server{Handler: adminHandler(), ReadHeaderTimeout: 10 * time.Second},
		grpcAddr:  addrString(gl),
		adminAddr: addrString(al),
		done:      make(chan error, 2),
	}
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

// shutdown lets in-flight streams finish for up to 10 seconds.
func (g *gateway) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { g.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		g.grpc.Stop()
	}
	g.admin.Shutdown(ctx)
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
