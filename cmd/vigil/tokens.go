package main

// This file owns `vigil tokens` and `vigil tenants`: API tokens and the tenants they act for,
// managed on the database directly, which whoever runs them holds anyway.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/sink/store"
)

const tokensUsage = `usage: vigil tokens create [--tenant T] [--scope read|admin] NAME
       vigil tokens list [--tenant T]
       vigil tokens revoke [--tenant T] ID

A token lets a client use the HTTP API as one tenant: it sends "Authorization: Bearer TOKEN".
The read scope searches and views moments, videos and cameras; admin may also upload, change
cameras and manage the tenant's tokens. "create" prints the token on stdout, once: vigil keeps
only its hash. A revoked token is refused at once and stays listed.
`

const tenantsUsage = `usage: vigil tenants add ID
       vigil tenants list

A tenant id is lower-case letters, digits, - and _, up to 63 characters. The configured tenant
is always known.
`

func tokensCmd(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tokensUsage)
		return usageError{errors.New("missing subcommand: create, list or revoke")}
	}
	switch args[0] {
	case "create":
		return createToken(ctx, configPath, args[1:])
	case "list":
		return listTokens(ctx, configPath, args[1:])
	case "revoke":
		return revokeToken(ctx, configPath, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, tokensUsage)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want create, list or revoke", args[0])}
}

// tokenFlags returns a subcommand's flag set with --tenant.
func tokenFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tokens "+name, flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant of the tokens (default: the configured tenant)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tokensUsage+"\n")
		fs.PrintDefaults()
	}
	return fs, tenant
}

func createToken(ctx context.Context, configPath string, args []string) error {
	fs, tenant := tokenFlags("create")
	scope := fs.String("scope", store.ScopeRead, "what the token may do: read, or admin")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usageError{errors.New("want one NAME, saying who or what holds the token")}
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	t, secret, err := a.store.CreateToken(ctx, *tenant, positional[0], *scope)
	switch {
	case errors.Is(err, store.ErrInvalidTokenSpec):
		return usageError{err}
	case errors.Is(err, store.ErrNoTenant):
		return fmt.Errorf("%w; add it with: vigil tenants add %s", err, *tenant)
	case err != nil:
		return err
	}
	// The secret alone goes to stdout, so that TOKEN=$(vigil tokens create ...) captures it.
	fmt.Fprintf(os.Stderr, "created token %d %q of tenant %s with the %s scope; store it now, it is not shown again:\n",
		t.ID, t.Name, t.Tenant, t.Scope)
	fmt.Println(secret)
	return nil
}

func listTokens(ctx context.Context, configPath string, args []string) error {
	fs, tenant := tokenFlags("list")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", positional[0])}
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	tokens, err := a.store.Tokens(ctx, *tenant)
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		fmt.Printf("no tokens in tenant %s\n", *tenant)
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSCOPE\tCREATED\tLAST USED\tREVOKED")
	for _, t := range tokens {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, when(&t.CreatedAt), when(t.LastUsedAt), when(t.RevokedAt))
	}
	return w.Flush()
}

// when shows a time to the minute in local time, or "never".
func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func revokeToken(ctx context.Context, configPath string, args []string) error {
	fs, tenant := tokenFlags("revoke")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usageError{errors.New("want one token ID (vigil tokens list shows them)")}
	}
	id, err := strconv.ParseInt(positional[0], 10, 64)
	if err != nil || id <= 0 {
		return usageError{fmt.Errorf("token ID %q is not a positive whole number", positional[0])}
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	t, err := a.store.RevokeToken(ctx, *tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tenant %s has no token %d", *tenant, id)
	}
	if err != nil {
		return err
	}
	fmt.Printf("revoked token %d %q of tenant %s\n", t.ID, t.Name, t.Tenant)
	return nil
}

func tenantsCmd(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tenantsUsage)
		return usageError{errors.New("missing subcommand: add or list")}
	}
	switch args[0] {
	case "add":
		return addTenant(ctx, configPath, args[1:])
	case "list":
		return listTenants(ctx, configPath, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, tenantsUsage)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want add or list", args[0])}
}

// tenantArgs parses a tenants subcommand's command line, which has no flags but -h.
func tenantArgs(name string, args []string) ([]string, error) {
	fs := flag.NewFlagSet("tenants "+name, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), tenantsUsage) }
	return parseInterleaved(fs, args)
}

func addTenant(ctx context.Context, configPath string, args []string) error {
	positional, err := tenantArgs("add", args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usageError{errors.New("want one tenant ID")}
	}
	id := positional[0]
	if !configs.ValidTenant(id) {
		return usageError{fmt.Errorf("%q is not a tenant id (lower-case letters, digits, - and _, up to 63)", id)}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.openStore(ctx); err != nil {
		return err
	}
	if _, err := a.store.AddTenant(ctx, id); err != nil {
		return err
	}
	fmt.Printf("added tenant %s; make its first token with: vigil tokens create --tenant %s --scope admin NAME\n", id, id)
	return nil
}

func listTenants(ctx context.Context, configPath string, args []string) error {
	positional, err := tenantArgs("list", args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", positional[0])}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.openStore(ctx); err != nil {
		return err
	}
	tenants, err := a.store.Tenants(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tCREATED")
	for _, t := range tenants {
		fmt.Fprintf(w, "%s\t%s\n", t.ID, when(&t.CreatedAt))
	}
	return w.Flush()
}
