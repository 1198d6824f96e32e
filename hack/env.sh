# Sourced by the project's scripts: where everything the project installs
# lives, so that no script depends on the caller's PATH or on what an
# earlier run left on the machine.
#
#   $RP_CACHE_DIR (default ~/.cache/release-passport)
#     bin/<tool>-<version>/    every tool the project builds or installs, by version
#     go/mod, go/build         the Go module and build caches of those builds
#     cargo-target/            Rust build output of .ci/run
#     cluster/                 the local cluster's data (make cluster)
#
# Deleting that one directory makes the next run cold.
rp_cache=${RP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/release-passport}
export RP_CACHE_DIR=$rp_cache
# The Go builds of the control plane and the tools keep their module and build
# caches beside their output: one directory to delete for a cold run. The
# module cache is made writable so that `rm -rf` works for any user.
export GOMODCACHE=${RP_GOMODCACHE:-$rp_cache/go/mod}
export GOCACHE=${RP_GOCACHE:-$rp_cache/go/build}
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw -buildvcs=false"
export GOTOOLCHAIN=local

# rp_require TOOL WHY: fail with a message that says what to install.
rp_require() {
  command -v "$1" >/dev/null 2>&1 && return 0
  printf '[deps] error: %s is required (%s)\n' "$1" "$2" >&2
  exit 1
}
