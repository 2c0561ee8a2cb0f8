package api_test

// This file holds openapi.json against the server: the document is well formed, it documents
// every route the server registers and no other, each documented operation reaches its own
// route, and real responses carry what the document says they do.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilcam/vigil/ingest"
	"github.com/vigilcam/vigil/sink/api"
	"github.com/vigilcam/vigil/sink/store/storetest"
)

// fallback is the catch-all pattern that answers 404 to paths without a route. It is no route of
// its own, so the document leaves it out.
const fallback = "/"

// methods are the operations a path item may hold.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// wildcard is a parameter in a path template.
var wildcard = regexp.MustCompile(`\{([^}]*)\}`)

// operation is one operation of the document.
type operation struct {
	// key is its method and path template, as routeKey makes them of patterns.
	key  string
	path string
	// fields is the operation object.
	fields map[string]any
	// params are its path item's parameters and its own, references resolved.
	params []map[string]any
}

// TestOpenAPIDocument: openapi.json is an OpenAPI 3.1 document whose references resolve, whose
// operations each have an id of their own, a summary and a success response, and whose path
// templates and path parameters agree.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadDoc(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi is %v, want 3.1.0", doc["openapi"])
	}
	info := object(doc["info"])
	if version, _ := info["version"].(string); info["title"] != "vigil" || version == "" {
		t.Errorf("info: %v", info)
	}
	checkRefs(t, doc, doc, "#")
	ids := map[string]string{}
	for _, op := range operations(doc) {
		id, _ := op.fields["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s has no operationId", op.key)
		case ids[id] != "":
			t.Errorf("%s and %s share the operationId %q", ids[id], op.key, id)
		}
		ids[id] = op.key
		if summary, _ := op.fields["summary"].(string); summary == "" {
			t.Errorf("%s has no summary", op.key)
		}
		success := false
		for status := range object(op.fields["responses"]) {
			success = success || strings.HasPrefix(status, "2")
		}
		if !success {
			t.Errorf("%s documents no 2xx response", op.key)
		}
		var inPath []string
		for _, m := range wildcard.FindAllStringSubmatch(op.path, -1) {
			inPath = append(inPath, m[1])
		}
		declared := map[string]bool{}
		for _, p := range op.params {
			if p["in"] != "path" {
				continue
			}
			name, _ := p["name"].(string)
			declared[name] = true
			if !slices.Contains(inPath, name) {
				t.Errorf("%s declares the path parameter %q, which its path lacks", op.key, name)
			}
			if p["required"] != true {
				t.Errorf("%s: path parameter %q must be required", op.key, name)
			}
		}
		for _, name := range inPath {
			if !declared[name] {
				t.Errorf("%s: {%s} is not declared as a path parameter", op.key, name)
			}
		}
	}
}

// TestOpenAPIRoutes: the routes the server registers are the operations the document has, and a
// request for each operation reaches the route registered for it.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadDoc(t)
	s := api.New(api.Config{Tenant: "default"}, storetest.Open(t), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	served := map[string]string{} // routeKey → pattern
	for _, pattern := range s.Patterns() {
		if pattern == fallback {
			continue
		}
		key, ok := routeKey(pattern)
		if !ok {
			t.Errorf("pattern %q has no method or no path: give it them, so that it can be documented", pattern)
			continue
		}
		served[key] = pattern
	}
	ops := operations(doc)
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.key] = true
	}
	var undocumented, unserved []string
	for key := range served {
		if !documented[key] {
			undocumented = append(undocumented, key)
		}
	}
	for key := range documented {
		if _, ok := served[key]; !ok {
			unserved = append(unserved, key)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unserved)
	if len(undocumented) > 0 {
		t.Errorf("routes the server registers that openapi.json does not document:\n\t%s", strings.Join(undocumented, "\n\t"))
	}
	if len(unserved) > 0 {
		t.Errorf("operations openapi.json documents that the server does not register:\n\t%s", strings.Join(unserved, "\n\t"))
	}

	for _, op := range ops {
		pattern, ok := served[op.key]
		if !ok {
			continue
		}
		method, _, _ := strings.Cut(op.key, " ")
		req := httptest.NewRequest(method, examplePath(doc, op), nil)
		if got := s.Route(req); got != pattern {
			if got == fallback {
				got += " (the catch-all 404)"
			}
			t.Errorf("%s: %s %s is routed to %s, want %q", op.key, method, req.URL.Path, got, pattern)
		}
	}
}

// TestOpenAPIResponses: real answers, successes and problems, have a documented status and
// content type, and a JSON body has what its schema requires, of the types it says, and nothing
// it does not document.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadDoc(t)
	st := storetest.Open(t)
	d := fill(t, st, "default")
	live := states{d.camera.ID: {Phase: ingest.Streaming, Since: time.Now()}}
	s := api.New(api.Config{Tenant: "default", BootstrapToken: bootstrap, Cameras: live}, st,
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	status, header, body := call(t, srv, "", "GET", "/api/v1/openapi.json", "")
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" || body != string(file) {
		t.Errorf("GET /api/v1/openapi.json: %d %s, %d bytes; want 200 application/json with openapi.json's %d bytes",
			status, header.Get("Content-Type"), len(body), len(file))
	}

	ops := map[string]operation{}
	for _, op := range operations(doc) {
		ops[op.key] = op
	}
	moment, video, camera := d.moment.ID, itoa(d.video.ID), itoa(d.camera.ID)
	// Requests without a token act as the default tenant's admin: the server is on loopback.
	for _, c := range []struct {
		method, path, token, body string
		status                    int
	}{
		{"GET", "/api/v1/openapi.json", "", "", 200},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/", "", "", 200},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/metrics", d.admin, "", 403},
		{"GET", "/api/v1/search?q=car", "", "", 200},
		{"GET", "/api/v1/search?q=car&top_k=1&explain=true", "", "", 200},
		{"GET", "/api/v1/search", "", "", 400},
		{"GET", "/api/v1/search?q=car&tenant=other", "", "", 400},
		{"GET", "/api/v1/search?q=car", "vgl_not-a-token", "", 401},
		{"GET", "/api/v1/search/why?q=car&moment_id=" + moment, "", "", 200},
		{"GET", "/api/v1/search/why?q=car&moment_id=0196a3e0-8f2b-7c1d-9e4f-5a6b7c8d9e0f", "", "", 404},
		{"PUT", "/api/v1/search/synonyms", "", `{"groups": [["dog", "hound"]]}`, 200},
		{"PUT", "/api/v1/search/synonyms", "", `{"groups": [["dog"]]}`, 400},
		{"GET", "/api/v1/search/synonyms", "", "", 200},
		{"PUT", "/api/v1/search/pins", "", `{"query": "car", "moment_ids": ["` + moment + `"]}`, 200},
		{"GET", "/api/v1/search/pins", "", "", 200},
		{"GET", "/api/v1/moments/" + moment, "", "", 200},
		{"GET", "/api/v1/moments/" + moment + "/thumbnail.jpg", "", "", 200},
		{"GET", "/api/v1/moments/42", "", "", 400},
		{"GET", "/api/v1/videos", "", "", 200},
		{"GET", "/api/v1/videos/" + video, "", "", 200},
		{"GET", "/api/v1/videos/999999", "", "", 404},
		{"POST", "/api/v1/videos?name=clip.mp4", "", "data", 503},
		{"GET", "/api/v1/cameras", "", "", 200},
		{"GET", "/api/v1/cameras/" + camera, "", "", 200},
		{"POST", "/api/v1/cameras", "", `{"name": "yard", "url": "rtsp://cam/yard", "motion_mask": [[{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 1, "y": 1}]]}`, 201},
		{"POST", "/api/v1/cameras", "", `{"name": "yard", "url": "rtsp://cam/yard"}`, 409},
		{"POST", "/api/v1/cameras", "", `{"name": "yard", "fps": 5}`, 400},
		{"PATCH", "/api/v1/cameras/" + camera, "", `{"enabled": false, "username": null}`, 200},
		{"DELETE", "/api/v1/cameras/" + camera, "", "", 204},
		{"GET", "/api/v1/tokens", "", "", 200},
		{"POST", "/api/v1/tokens", "", `{"name": "ci", "scope": "admin"}`, 201},
		{"DELETE", "/api/v1/tokens/" + itoa(d.tokenID), "", "", 204},
		{"POST", "/api/v1/tenants", "", `{"id": "acme"}`, 403},
		{"POST", "/api/v1/tenants", bootstrap, `{"id": "acme"}`, 201},
		{"POST", "/api/v1/tenants", bootstrap, `{"id": "acme"}`, 409},
	} {
		status, header, body := call(t, srv, c.token, c.method, c.path, c.body)
		if status != c.status {
			t.Errorf("%s %s: %d %.200s, want %d", c.method, c.path, status, body, c.status)
			continue
		}
		key, _ := routeKey(s.Route(httptest.NewRequest(c.method, c.path, nil)))
		op, ok := ops[key]
		if !ok {
			t.Errorf("%s %s: served by %q, which openapi.json does not document", c.method, c.path, key)
			continue
		}
		for _, problem := range conformance(doc, op, status, header.Get("Content-Type"), body) {
			t.Errorf("%s %s: %d: %s", c.method, c.path, status, problem)
		}
	}
}

// TestProblemCodes: the codes of the Problem schema are the codes the package answers with. It
// reads them from the source: the code arguments of problem and unauthorized that are literals.
func TestProblemCodes(t *testing.T) {
	enum, _ := pointer(loadDoc(t), "#/components/schemas/Problem/properties/code/enum")
	var documented []string
	for _, code := range array(enum) {
		code, _ := code.(string)
		documented = append(documented, code)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{} // code → where
	fset := gotoken.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			lit, isLit := call.Args[2].(*ast.BasicLit)
			if ok && (fn.Name == "problem" || fn.Name == "unauthorized") && isLit && lit.Kind == gotoken.STRING {
				code, _ := strconv.Unquote(lit.Value)
				used[code] = fset.Position(lit.Pos()).String()
			}
			return true
		})
	}
	for code, at := range used {
		if !slices.Contains(documented, code) {
			t.Errorf("%s: code %q is not in the Problem schema's enum", at, code)
		}
	}
	for _, code := range documented {
		if _, ok := used[code]; !ok {
			t.Errorf("the Problem schema lists %q, which no handler answers with", code)
		}
	}
}

// loadDoc reads openapi.json as plain JSON values.
func loadDoc(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// object is v as a JSON object; nil when it is not one.
func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// array is v as a JSON array; nil when it is not one.
func array(v any) []any {
	a, _ := v.([]any)
	return a
}

// pointer finds what a local reference, such as #/components/schemas/Problem, points to.
func pointer(doc map[string]any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var v any = doc
	unescape := strings.NewReplacer("~1", "/", "~0", "~")
	for _, part := range strings.Split(rest, "/") {
		part = unescape.Replace(part)
		switch x := v.(type) {
		case map[string]any:
			v, ok = x[part]
		case []any:
			i, err := strconv.Atoi(part)
			if ok = err == nil && i >= 0 && i < len(x); ok {
				v = x[i]
			}
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return v, true
}

// resolve is the object v refers to, or v itself when it is no reference; nil when a reference
// does not resolve.
func resolve(doc map[string]any, v any) map[string]any {
	for range 10 { // deeper than any chain of references in the document; a cycle ends here
		ref, ok := object(v)["$ref"].(string)
		if !ok {
			return object(v)
		}
		if v, ok = pointer(doc, ref); !ok {
			return nil
		}
	}
	return nil
}

// checkRefs reports each reference under v, found at the pointer at, that does not resolve.
func checkRefs(t *testing.T, doc map[string]any, v any, at string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			if _, found := pointer(doc, ref); !found {
				t.Errorf("%s: $ref %q does not resolve", at, ref)
			}
		}
		for k, x := range v {
			checkRefs(t, doc, x, at+"/"+k)
		}
	case []any:
		for i, x := range v {
			checkRefs(t, doc, x, at+"/"+strconv.Itoa(i))
		}
	}
}

// operations lists the document's operations by key.
func operations(doc map[string]any) []operation {
	var ops []operation
	for path, item := range object(doc["paths"]) {
		item := object(item)
		for _, method := range methods {
			fields := object(item[method])
			if fields == nil {
				continue
			}
			op := operation{key: strings.ToUpper(method) + " " + path, path: path, fields: fields}
			for _, p := range slices.Concat(array(item["parameters"]), array(fields["parameters"])) {
				op.params = append(op.params, resolve(doc, p))
			}
			ops = append(ops, op)
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.key, b.key) })
	return ops
}

// routeKey is a ServeMux pattern as the document names its operation: method and path template.
// The pattern "GET /{$}", which matches / alone, is the operation GET /. False when the pattern
// has no method or names a host, which the document cannot say.
func routeKey(pattern string) (string, bool) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || !strings.HasPrefix(path, "/") {
		return "", false
	}
	return method + " " + strings.TrimSuffix(path, "{$}"), true
}

// examplePath is op's path with each parameter replaced by a value its schema takes, as a
// client would send it.
func examplePath(doc map[string]any, op operation) string {
	path := op.path
	for _, p := range op.params {
		if p["in"] != "path" {
			continue
		}
		schema := resolve(doc, p["schema"])
		value := "x"
		switch {
		case schema["format"] == "uuid":
			value = "0196a3e0-8f2b-7c1d-9e4f-5a6b7c8d9e0f"
		case schema["type"] == "integer":
			value = "1"
		}
		name, _ := p["name"].(string)
		path = strings.ReplaceAll(path, "{"+name+"}", value)
	}
	return path
}

// conformance lists how an answer of op differs from what the document says op answers with
// status: the status and content type must be documented, and a JSON body must conform to its
// schema.
func conformance(doc map[string]any, op operation, status int, contentType, body string) []string {
	resp := resolve(doc, object(op.fields["responses"])[strconv.Itoa(status)])
	if resp == nil {
		return []string{"the status is not documented"}
	}
	content := object(resp["content"])
	if content == nil {
		if body != "" {
			return []string{"a body, where the document says none"}
		}
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	media, ok := content[mediaType]
	if !ok {
		return []string{fmt.Sprintf("Content-Type %q; the document says %v", contentType, slices.Sorted(maps.Keys(content)))}
	}
	schema := object(media)["schema"]
	if schema == nil || !strings.HasSuffix(mediaType, "json") {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return []string{"the body is not JSON: " + err.Error()}
	}
	return conforms(doc, schema, v, "body")
}

// conforms lists where v, found at at, breaks schema: a required property missing, a property
// the schema does not document (where it lists properties), a wrong type, or a value outside
// an enum or const; through properties, additionalProperties, items and allOf. It is no JSON
// Schema validator: other keywords are left unchecked, which for the responses is enough.
func conforms(doc map[string]any, schema any, v any, at string) []string {
	s := merged(doc, schema)
	types := array(s["type"])
	if name, ok := s["type"].(string); ok {
		types = []any{name}
	}
	got := jsonType(v)
	if len(types) > 0 && !slices.Contains(types, any(got)) && !(got == "integer" && slices.Contains(types, any("number"))) {
		return []string{fmt.Sprintf("%s is %s, want %v", at, got, types)}
	}
	if enum, ok := s["enum"]; ok && !slices.Contains(array(enum), v) {
		return []string{fmt.Sprintf("%s is %v, want one of %v", at, v, enum)}
	}
	if c, ok := s["const"]; ok && c != v {
		return []string{fmt.Sprintf("%s is %v, want %v", at, v, c)}
	}
	var out []string
	props := object(s["properties"])
	if obj, ok := v.(map[string]any); ok {
		for _, name := range array(s["required"]) {
			if _, ok := obj[name.(string)]; !ok {
				out = append(out, fmt.Sprintf("%s lacks %q", at, name))
			}
		}
		for name, x := range obj {
			switch extra := s["additionalProperties"]; {
			case props[name] != nil:
				out = append(out, conforms(doc, props[name], x, at+"."+name)...)
			case object(extra) != nil:
				out = append(out, conforms(doc, extra, x, at+"."+name)...)
			case len(props) > 0:
				out = append(out, fmt.Sprintf("%s.%s is not documented", at, name))
			}
		}
	}
	if items := s["items"]; items != nil {
		for i, x := range array(v) {
			out = append(out, conforms(doc, items, x, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return out
}

// merged is schema with the members of its allOf folded in: their types, properties and
// required properties. Composing by allOf is all the document does.
func merged(doc map[string]any, schema any) map[string]any {
	s := map[string]any{}
	maps.Copy(s, resolve(doc, schema))
	props := map[string]any{}
	maps.Copy(props, object(s["properties"]))
	required := slices.Clone(array(s["required"]))
	for _, member := range array(s["allOf"]) {
		m := merged(doc, member)
		if s["type"] == nil {
			s["type"] = m["type"]
		}
		maps.Copy(props, object(m["properties"]))
		required = append(required, array(m["required"])...)
	}
	s["properties"], s["required"] = props, required
	return s
}

// jsonType is the JSON Schema type of a decoded JSON value.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}
