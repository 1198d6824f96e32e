//go:build tools

// Package tools pins kubeconform so that `go build` compiles it from the Go
// module proxy at exactly the version in go.mod.
package tools

import _ "github.com/yannh/kubeconform/cmd/kubeconform"
