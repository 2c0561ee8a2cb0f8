package api

// This file serves openapi.json, the OpenAPI 3.1 description of every route the server
// registers; openapi_test.go holds the two against each other.

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var openapi []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi)
}
