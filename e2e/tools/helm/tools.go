//go:build tools

// Package tools pins helm so that `go build` compiles it from the Go module
// proxy at exactly the version in go.mod.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
