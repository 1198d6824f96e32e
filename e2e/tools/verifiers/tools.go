//go:build tools

// Package tools pins the independent verifiers the tests run against the
// passport attestation, and the OCI registry it is attached in, so that one
// `go build` compiles them from the Go module proxy at exactly the versions
// in go.mod (their shared packages compile once):
//   - cosign: verify-blob-attestation, verify-attestation (nothing signs with it);
//   - kubectl-kyverno: the Kyverno CLI, which applies the ClusterPolicy recipe
//     with Kyverno's own image verification engine;
//   - registry: the CNCF distribution registry, on loopback in the tests.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno"
	_ "github.com/sigstore/cosign/v3/cmd/cosign"
)
