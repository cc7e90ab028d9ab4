// Command tollgate is an LLM API gateway: the ext_proc server that runs behind Envoy
// (serve), the envoy.yaml it needs (envoy), a checker for both (check), and a one-process
// gateway with an Envoy emulator for machines without Envoy (dev).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: tollgate <command> [flags]

commands:
  serve  --config FILE   run the ext_proc gRPC server and the admin HTTP server (behind Envoy)
  envoy  --config FILE   print the envoy.yaml for this config on stdout
  check  --config FILE [--envoy FILE]
                         validate config.yaml (and envoy.yaml, and that they agree)
  dev    --config FILE   run a whole gateway in one process: the Envoy emulator in front of
                         tollgate, on --listen (default 127.0.0.1:4000)

Run 'tollgate <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tollgate:", err)
		}
		os.Exit(1)
	}
}

// run executes one tollgate command until it finishes or ctx is cancelled. Tests start
// whole servers through it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, stderr)
	case "envoy":
		return renderEnvoy(args, stdout, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "dev":
		return dev(ctx, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
