// Command vigil watches cameras and video files and makes what happened in them searchable.
//
//	vigil [--config FILE] COMMAND [flags] [args]
//
// Commands: serve, index, search, cameras, tokens, tenants, migrate, doctor, models, version.
// Run "vigil COMMAND -h" for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	summary string
	run     func(ctx context.Context, configPath string, args []string) error
}

var commands = map[string]command{
	"serve":   {"run the API, search page, sink and index worker; optionally index files or folders", serve},
	"index":   {"index video files and wait until their moments are searchable", index},
	"search":  {"search moments in plain language", searchCmd},
	"cameras": {"add, list or remove cameras", camerasCmd},
	"tokens":  {"create, list or revoke API tokens", tokensCmd},
	"tenants": {"add or list tenants", tenantsCmd},
	"migrate": {"apply database migrations", migrate},
	"doctor":  {"check that everything vigil needs is present and working", doctor},
	"models":  {"fetch, verify or list the model weights", modelsCmd},
	"version": {"print the version", func(context.Context, string, []string) error {
		fmt.Println("vigil", version)
		return nil
	}},
}

var order = []string{"serve", "index", "search", "cameras", "tokens", "tenants", "migrate", "doctor", "models", "version"}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: vigil [--config FILE] COMMAND [flags] [args]\n\ncommands:\n")
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Fprintf(os.Stderr, "\nConfiguration: defaults, then FILE (or $VIGIL_CONFIG), then VIGIL_* variables; see configs/vigil.yml.\n")
}

func main() {
	global := flag.NewFlagSet("vigil", flag.ContinueOnError)
	global.Usage = usage
	configPath := global.String("config", "", "YAML configuration `file`")
	if err := global.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if global.NArg() == 0 {
		usage()
		os.Exit(2)
	}
	name := global.Arg(0)
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "vigil: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, *configPath, global.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(os.Stderr, "vigil %s: %v\n", name, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "vigil %s: %v\n", name, err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line.
type usageError struct{ error }

// parse parses a command's flags, turning mistakes into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
