package main

// This file owns `vigil cameras`: adding, listing and removing cameras in the registry. A running
// `vigil serve` picks the change up without a restart.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigilcam/vigil/configs"
	"github.com/vigilcam/vigil/sink/store"
)

const camerasUsage = `usage: vigil cameras add [--tenant T] [--fps F] [--keyframes-only] [--disabled] [--priority P] [--mask POLYGON]... NAME URL
       vigil cameras list [--tenant T] [--json]
       vigil cameras mask [--tenant T] NAME|ID [POLYGON...]
       vigil cameras rm [--tenant T] NAME|ID

Credentials go in the URL (rtsp://user:password@host:554/path, percent-encoded); they are stored
apart from it and never shown. Cameras declared in the configuration file are changed there.

A motion mask is a list of areas whose movement never counts, such as a clock or trees. A POLYGON
is three or more x,y points in fractions of the frame from its top left, separated by spaces:
"0.8,0 1,0 1,0.1 0.8,0.1" is the top right corner. "cameras mask" replaces the camera's mask;
without polygons it clears it.
`

func camerasCmd(ctx context.Context, configPath string, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, camerasUsage)
		return usageError{errors.New("missing subcommand: add, list, mask or rm")}
	}
	switch args[0] {
	case "add":
		return addCamera(ctx, configPath, args[1:])
	case "list":
		return listCameras(ctx, configPath, args[1:])
	case "mask":
		return maskCamera(ctx, configPath, args[1:])
	case "rm":
		return removeCamera(ctx, configPath, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, camerasUsage)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want add, list, mask or rm", args[0])}
}

// cameraFlags returns a subcommand's flag set with --tenant.
func cameraFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("cameras "+name, flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant of the cameras (default: the configured tenant)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), camerasUsage+"\n")
		fs.PrintDefaults()
	}
	return fs, tenant
}

// parseInterleaved parses flags given before, between or after the arguments, and returns the
// arguments; everything after "--" is an argument.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		if n := len(args) - fs.NArg(); n > 0 && args[n-1] == "--" {
			return append(positional, fs.Args()...), nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// openCameras opens the registry for tenant, or the configured tenant when it is empty.
func openCameras(ctx context.Context, configPath string, tenant *string) (*app, error) {
	if *tenant != "" && !configs.ValidTenant(*tenant) {
		return nil, usageError{fmt.Errorf("--tenant %q is not a tenant id (lower-case letters, digits, - and _)", *tenant)}
	}
	a, err := newApp(configPath)
	if err != nil {
		return nil, err
	}
	if *tenant == "" {
		*tenant = a.cfg.Tenant
	}
	if err := a.openStore(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func addCamera(ctx context.Context, configPath string, args []string) error {
	fs, tenant := cameraFlags("add")
	fps := fs.Float64("fps", 0, "frames per second to analyse, up to 60 (default: pipeline.analysis_fps)")
	keyframes := fs.Bool("keyframes-only", false, "decode only key frames")
	disabled := fs.Bool("disabled", false, "register the camera without watching it")
	priority := fs.Float64("priority", 0, "0 to 1: lifts the camera's moments in search ranking")
	var mask []configs.Polygon
	fs.Func("mask", "an area whose movement never counts, as \"x,y x,y x,y...\" in fractions of the frame (repeatable)", func(v string) error {
		p, err := parsePolygon(v)
		mask = append(mask, p)
		return err
	})
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 2 {
		return usageError{errors.New("want NAME and URL")}
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	c, err := a.store.AddCamera(ctx, *tenant, store.CameraSpec{
		Name: positional[0], URL: positional[1], AnalysisFPS: *fps, KeyframesOnly: *keyframes, Enabled: !*disabled,
		MotionMask: mask, Priority: *priority,
	})
	if errors.Is(err, store.ErrInvalid) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	fmt.Printf("added camera %q (video %d): %s\n", c.Name, c.ID, c.URL)
	return nil
}

func listCameras(ctx context.Context, configPath string, args []string) error {
	fs, tenant := cameraFlags("list")
	asJSON := fs.Bool("json", false, "print the cameras as JSON, as the HTTP API returns them")
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
	cams, err := a.store.Cameras(ctx, *tenant)
	if err != nil {
		return err
	}
	if *asJSON {
		if cams == nil {
			cams = []store.Camera{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"cameras": cams})
	}
	if len(cams) == 0 {
		fmt.Printf("no cameras in tenant %s\n", *tenant)
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tURL\tFPS\tKEYFRAMES ONLY\tENABLED\tDECLARED IN")
	for _, c := range cams {
		fps := "default"
		if c.AnalysisFPS != 0 {
			fps = strconv.FormatFloat(c.AnalysisFPS, 'g', -1, 64)
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%t\t%t\t%s\n", c.ID, c.Name, c.URL, fps, c.KeyframesOnly, c.Enabled, c.Declared)
	}
	return w.Flush()
}

func removeCamera(ctx context.Context, configPath string, args []string) error {
	fs, tenant := cameraFlags("rm")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usageError{errors.New("want one NAME or ID")}
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	c, err := findCamera(ctx, a, *tenant, positional[0])
	if err != nil {
		return err
	}
	if err := a.store.DeleteCamera(ctx, *tenant, c.ID); err != nil {
		return err
	}
	fmt.Printf("removed camera %q (video %d); its moments stay searchable\n", c.Name, c.ID)
	return nil
}

func maskCamera(ctx context.Context, configPath string, args []string) error {
	fs, tenant := cameraFlags("mask")
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(positional) == 0 {
		return usageError{errors.New("want NAME or ID, then the mask's polygons (none clears it)")}
	}
	mask := []configs.Polygon{}
	for _, v := range positional[1:] {
		p, err := parsePolygon(v)
		if err != nil {
			return usageError{err}
		}
		mask = append(mask, p)
	}
	a, err := openCameras(ctx, configPath, tenant)
	if err != nil {
		return err
	}
	defer a.close()
	c, err := findCamera(ctx, a, *tenant, positional[0])
	if err != nil {
		return err
	}
	c, err = a.store.UpdateCamera(ctx, *tenant, c.ID, store.CameraPatch{MotionMask: &mask})
	if errors.Is(err, store.ErrInvalid) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	fmt.Printf("camera %q now ignores movement in %d area(s)\n", c.Name, len(c.MotionMask))
	return nil
}

// findCamera looks a camera up by name, which is what people type, and by id when no camera has
// that name.
func findCamera(ctx context.Context, a *app, tenant, nameOrID string) (store.Camera, error) {
	c, err := a.store.CameraByName(ctx, tenant, nameOrID)
	if id, perr := strconv.ParseInt(nameOrID, 10, 64); errors.Is(err, store.ErrNotFound) && perr == nil {
		c, err = a.store.Camera(ctx, tenant, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Camera{}, fmt.Errorf("tenant %s has no camera named or numbered %q", tenant, nameOrID)
	}
	return c, err
}

// parsePolygon reads "x,y x,y x,y..." in fractions of the frame; ValidateMask checks the rest.
func parsePolygon(v string) (configs.Polygon, error) {
	var p configs.Polygon
	for _, pair := range strings.Fields(v) {
		xs, ys, ok := strings.Cut(pair, ",")
		x, xerr := strconv.ParseFloat(xs, 64)
		y, yerr := strconv.ParseFloat(ys, 64)
		if !ok || xerr != nil || yerr != nil {
			return nil, fmt.Errorf("mask polygon %q: point %q is not x,y", v, pair)
		}
		p = append(p, configs.Point{X: x, Y: y})
	}
	if err := configs.ValidateMask([]configs.Polygon{p}); err != nil {
		return nil, fmt.Errorf("mask polygon %q: %w", v, err)
	}
	return p, nil
}
