package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vigilcam/vigil/sink/search"
)

func searchCmd(ctx context.Context, configPath string, args []string) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant to search (default: the configured tenant)")
	topK := fs.Int("top-k", search.DefaultTopK, fmt.Sprintf("number of results, 1 to %d", search.MaxTopK))
	asJSON := fs.Bool("json", false, "print the results as JSON, as the HTTP API returns them")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vigil search [--tenant T] [--top-k K] [--json] QUERY\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	q := search.Query{Text: strings.Join(fs.Args(), " "), TopK: *topK, Tenant: *tenant}
	if err := q.Validate(); err != nil {
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
	resp, err := search.New(a.store.Pool()).Search(ctx, q)
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
