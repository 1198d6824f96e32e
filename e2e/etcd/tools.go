//go:build tools

// Package tools pins the real etcd server so that `go build` compiles it from
// the Go module proxy at exactly the version in go.mod.
package tools

import _ "go.etcd.io/etcd/server/v3"
