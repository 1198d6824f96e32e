#!/usr/bin/env bash
# Installs what the build, the tests and the demo need on a fresh machine, and
# nothing twice: Debian packages through apt-get (into the system
# directories), Rust components through rustup. Everything else the project
# uses is installed into its cache by version and called by that path: the
# control-plane binaries by e2e/cluster.sh, helm, kubeconform and hadolint by
# e2e/tools/tools.sh.
set -euo pipefail
# shellcheck source=env.sh
. "$(dirname "$0")/env.sh"

say() { printf '[deps] %s\n' "$*" >&2; }

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v flock >/dev/null || need_apt+=(util-linux)
command -v git >/dev/null || need_apt+=(git)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v python3 >/dev/null || need_apt+=(python3)
# Python tools (hadolint, verifiers) are installed into virtual environments in the cache.
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
for extra in "$@"; do
  case "$extra" in
    prometheus) command -v prometheus >/dev/null || need_apt+=(prometheus) ;;
    lua) command -v lua5.1 >/dev/null || need_apt+=(lua5.1) ;;
    # Headless browser tests of the console (WebDriver through chromedriver).
    chromium)
      command -v chromium >/dev/null || need_apt+=(chromium)
      command -v chromedriver >/dev/null || need_apt+=(chromium-driver) ;;
    # The console's OpenID Connect provider (e2e/tools/oidc-provider, from npm).
    nodejs)
      command -v node >/dev/null || need_apt+=(nodejs)
      command -v npm >/dev/null || need_apt+=(npm) ;;
    # The one-node cluster (e2e/cluster.sh): container runtime, CNI plugins,
    # iptables for kube-proxy, buildah and musl for the images built here.
    node)
      command -v containerd >/dev/null || need_apt+=(containerd)
      command -v runc >/dev/null || need_apt+=(runc)
      command -v buildah >/dev/null || need_apt+=(buildah)
      [ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)
      command -v iptables >/dev/null || need_apt+=(iptables)
      command -v conntrack >/dev/null || need_apt+=(conntrack)
      command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
      command -v nsenter >/dev/null || need_apt+=(util-linux)
      command -v ip >/dev/null || need_apt+=(iproute2)
      command -v readelf >/dev/null || need_apt+=(binutils)
      [ -f /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates) ;;
    # The OpenSearch node of the log connector tests (e2e/opensearch): Java 17
    # and Maven, called there by these Debian paths.
    java)
      [ -x "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)/bin/javac" ] || need_apt+=(openjdk-17-jdk-headless)
      [ -x /usr/share/maven/bin/mvn ] || need_apt+=(maven) ;;
    *) say "unknown optional dependency: $extra"; exit 2 ;;
  esac
done

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing Debian packages with apt-get (into /usr/bin): ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

rp_require python3 "the checks run small Python scripts: apt-get install python3 python3-venv"
rp_require go "to build the local control plane: install Go from https://go.dev/dl"
rp_require cargo "install Rust with rustup (https://rustup.rs)"
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || {
      say "adding rust component $component"
      rustup component add "$component"
    }
  done
  # The operator image holds a static (musl) build, as the Dockerfile's does.
  case " $* " in
    *" node "*)
      rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl || {
        say "adding the Rust target x86_64-unknown-linux-musl (rustup)"
        rustup target add x86_64-unknown-linux-musl
      } ;;
  esac
fi
