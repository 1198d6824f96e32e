#!/usr/bin/env bash
# Builds the chart tools from the Go module proxy, at the versions pinned in
# e2e/tools/<tool>/go.mod, into the cache (once per version), and prints the
# binary's path:
#   bash e2e/tools/tools.sh path helm|kubeconform
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${RP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/release-passport}
say() { printf '[tools] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

module_of() {
  case "$1" in
    helm) echo "helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm" ;;
    kubeconform) echo "github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform" ;;
    *) die "unknown tool: $1 (helm, kubeconform)" ;;
  esac
}

build() {
  local tool=$1 module pkg version out start beat rc=0
  read -r module pkg <<<"$(module_of "$tool")"
  version=$(awk -v m="$module" '$1 == "require" && $2 == m {print $3} $1 == m {print $2}' "$here/$tool/go.mod" | head -n1)
  [ -n "$version" ] || die "no version of $module in e2e/tools/$tool/go.mod"
  out=$cache/bin/$tool-$version/$tool
  if [ ! -x "$out" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build $tool (https://go.dev/doc/install)"
    mkdir -p "$(dirname "$out")"
    exec 8>"$cache/bin/.build-$tool.lock"
    flock 8
    if [ ! -x "$out" ]; then
      start=$(date +%s)
      say "building $tool $version from the Go module proxy (once per version)..."
      ( while sleep 30; do say "  ... still building $tool ($(( $(date +%s) - start ))s)"; done ) &
      beat=$!
      (cd "$here/$tool" && GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg") || rc=$?
      kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
      [ "$rc" -eq 0 ] || die "building $tool failed (go build $pkg in e2e/tools/$tool)"
      mv "$out.tmp" "$out"
      say "built $tool $version in $(( $(date +%s) - start ))s -> $out"
    fi
  fi
  printf '%s\n' "$out"
}

case "${1:-}" in
  path) [ $# -eq 2 ] || die "usage: $0 path helm|kubeconform"; build "$2" ;;
  *) die "usage: $0 path helm|kubeconform" ;;
esac
