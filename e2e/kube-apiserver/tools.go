//go:build tools

// Package tools pins the real kube-apiserver so that `go build` compiles it
// from the Go module proxy at exactly the version in go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
