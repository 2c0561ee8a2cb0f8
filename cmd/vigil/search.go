package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigilcam/vigil/sink/search"
)

func searchCmd(ctx context.Context, configPath string, args []string) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant to search (default: the configured tenant)")
	asJSON := fs.Bool("json", false, "print the results as JSON, as the HTTP API returns them")
	// The filters are the API's parameters, read by the same parser.
	params := url.Values{}
	for _, p := range []struct{ name, usage string }{
		{"top-k", fmt.Sprintf("number of results, 1 to %d (default %d)", search.MaxTopK, search.DefaultTopK)},
		{"camera", "keep moments of these cameras or files, by name or id (repeatable, or comma separated)"},
		{"last", "keep moments of the last `DURATION` (24h, 90m, 7d)"},
		{"from", "keep moments that end after this `TIME` (RFC 3339)"},
		{"to", "keep moments that start before this `TIME` (RFC 3339)"},
		{"objects", "keep moments with at least these objects at once: `CLASS[:N],...` (person:2,car)"},
		{"min-duration", "keep moments lasting at least this `DURATION`"},
		{"kind", "keep moments of live cameras (live) or uploaded files (upload)"},
		{"cursor", "continue from a previous page's next_cursor"},
		{"explain", "show each result's score parts (true)"},
	} {
		key := strings.ReplaceAll(p.name, "-", "_")
		fs.Func(p.name, p.usage, func(v string) error {
			params.Add(key, v)
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vigil search [--tenant T] [--json] [filters] QUERY\n\n")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	params.Set("q", strings.Join(positional, " "))
	q, err := search.ParseQuery(*tenant, params, time.Now())
	if err != nil {
		return usageError{err}
	}
	a, err := newApp(configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if q.Tenant == "" {
		q.Tenant = a.cfg.Tenant
	}
	if err := a.openStore(ctx); err != nil {
		return err
	}
	resp, err := a.searcher().Search(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp)
	}
	if len(resp.Results) == 0 {
		fmt.Println("no moments match")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCORE\tSOURCE\tSPAN\tSTARTED\tCAPTION\tOBJECTS")
	for _, r := range resp.Results {
		fmt.Fprintf(w, "%.3f\t%s\t%.1f–%.1f s\t%s\t%s\t%s\n", r.Score, r.Source, r.StartS, r.EndS,
			r.StartedAt.Local().Format("2006-01-02 15:04:05"), r.Caption, objects(r.Objects))
	}
	return w.Flush()
}

func objects(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for class, n := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", class, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
