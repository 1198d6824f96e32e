#!/usr/bin/env bash
# A real local Kubernetes control plane for tests, the demo and CI:
# etcd + kube-apiserver + kubectl, compiled from the Go module proxy at the
# versions pinned in e2e/*/go.mod, cached outside the clone by version.
#
#   e2e/cluster.sh build     build (or reuse) the binaries
#   e2e/cluster.sh up        start etcd + kube-apiserver in the background (idempotent)
#   e2e/cluster.sh down      stop them and delete the cluster's data
#   e2e/cluster.sh status    say whether it runs, and the server version
#   e2e/cluster.sh env       print `export KUBECONFIG=...` (add --json for scripts)
#
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport),
# RP_CLUSTER_DIR (default $RP_CACHE_DIR/cluster), RP_ETCD_PORT (23790),
# RP_APISERVER_PORT (26443).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../hack/env.sh
. "$here/../hack/env.sh"
cache=$rp_cache
dir=${RP_CLUSTER_DIR:-$cache/cluster}
etcd_port=${RP_ETCD_PORT:-23790}
etcd_peer_port=$((etcd_port + 10))
api_port=${RP_APISERVER_PORT:-26443}

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$here/kube-apiserver/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3; exit}' "$here/etcd/go.mod")
# The -r suffix is the build recipe: bump it when the flags below change.
kube_bin=$cache/bin/kubernetes-$kube_version-r2
etcd_bin=$cache/bin/etcd-$etcd_version

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }
fail_up() { stop_processes; die "$@"; }

# Version stamps that Kubernetes' own release build sets (hack/lib/version.sh),
# so that `kubectl version` and /version report the real version.
kube_ldflags() {
  local v=$kube_version major minor
  major=${v#v}; major=${major%%.*}
  minor=${v#v*.}; minor=${minor%%.*}
  local f="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    f+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=go-module-proxy"
  done
  printf '%s' "$f"
}

# go_build OUT MODULE_DIR PACKAGE LABEL [LDFLAGS]: compile one binary from the pinned module.
go_build() {
  local out=$1 moddir=$2 pkg=$3 label=$4 ldflags=${5:-} start
  [ -x "$out" ] && return 0
  command -v go >/dev/null || die "the Go toolchain is needed to build $label (https://go.dev/doc/install)"
  mkdir -p "$(dirname "$out")"
  start=$(date +%s)
  say "building $label from the Go module proxy (once per version; several minutes on 2 cores)..."
  # A heartbeat so that long, silent compiles still show progress.
  ( while sleep 30; do say "  ... still building $label ($(( $(date +%s) - start ))s)"; done ) &
  local beat=$!
  local rc=0
  (cd "$moddir" && go build -trimpath -ldflags "-s -w$ldflags" -o "$out.tmp" "$pkg") || rc=$?
  kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  [ "$rc" -eq 0 ] || die "building $label failed (go build $pkg in $moddir)"
  mv "$out.tmp" "$out"
  say "built $label in $(( $(date +%s) - start ))s -> $out"
}

build() {
  mkdir -p "$cache/bin"
  exec 8>"$cache/bin/.build.lock"
  flock 8
  go_build "$etcd_bin/etcd" "$here/etcd" go.etcd.io/etcd/server/v3 "etcd $etcd_version"
  go_build "$kube_bin/kube-apiserver" "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "kube-apiserver $kube_version" "$(kube_ldflags)"
  go_build "$kube_bin/kubectl" "$here/kube-apiserver" k8s.io/kubernetes/cmd/kubectl "kubectl $kube_version" "$(kube_ldflags)"
  flock -u 8
}

admin_curl() {
  curl -sS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "$@"
}

running() {
  [ -f "$dir/kube-apiserver.pid" ] && kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null &&
    [ -f "$dir/etcd.pid" ] && kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null &&
    [ "$(admin_curl "https://127.0.0.1:$api_port/readyz" 2>/dev/null)" = "ok" ]
}

pki() {
  local p=$dir/pki
  [ -f "$p/admin.crt" ] && return 0
  say "generating certificates and service-account signing keys in $p"
  mkdir -p "$p"
  (
    cd "$p"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=release-passport-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    cat >apiserver.ext <<EOF
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EOF
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=release-passport-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile client.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
}

# Static users for tests and demos that act as distinct people (alice and bob
# approve, carol administers, dave releases and approves): token,user,uid,"groups".
tokens() {
  local p=$dir/pki user groups
  [ -f "$p/tokens.csv" ] && return 0
  : >"$p/tokens.csv"
  for user in alice:release-approvers bob:release-approvers carol:platform-team dave:release-approvers; do
    groups=${user#*:}
    printf '%s,%s,%s,"%s"\n' "$(openssl rand -hex 24)" "${user%%:*}" "uid-${user%%:*}" "$groups" >>"$p/tokens.csv"
  done
  chmod 600 "$p/tokens.csv"
}

kubeconfig() {
  local b64="base64 -w0"
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: release-passport-local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $($b64 <"$dir/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 <"$dir/pki/admin.crt")
    client-key-data: $($b64 <"$dir/pki/admin.key")
contexts:
- name: release-passport-local
  context:
    cluster: release-passport-local
    user: admin
current-context: release-passport-local
EOF
  chmod 600 "$dir/kubeconfig"
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

up() {
  build
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if running; then
    say "already running: https://127.0.0.1:$api_port ($kube_version)"
    return 0
  fi
  stop_processes
  for port in "$etcd_port" "$etcd_peer_port" "$api_port"; do
    port_free "$port" || die "port $port is in use by another program; set RP_ETCD_PORT / RP_APISERVER_PORT"
  done
  pki
  tokens
  kubeconfig
  local start
  start=$(date +%s%N)
  say "starting etcd $etcd_version on 127.0.0.1:$etcd_port"
  setsid "$etcd_bin/etcd" --name default --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --log-level warn \
    >"$dir/etcd.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/etcd.pid"
  say "starting kube-apiserver $kube_version on https://127.0.0.1:$api_port (RBAC, admission webhooks)"
  setsid "$kube_bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" --token-auth-file "$dir/pki/tokens.csv" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode RBAC --endpoint-reconciler-type none \
    --enable-admission-plugins ValidatingAdmissionWebhook,MutatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --allow-privileged=true --profiling=false --v=1 \
    >"$dir/kube-apiserver.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$dir/kube-apiserver.pid"
  local i
  for i in $(seq 1 240); do
    if [ "$(admin_curl "https://127.0.0.1:$api_port/readyz" 2>/dev/null)" = "ok" ]; then
      local ms=$((($(date +%s%N) - start) / 1000000))
      printf '%s\n' "$ms" >"$dir/startup-ms"
      say "ready in ${ms} ms: kube-apiserver $kube_version, etcd $etcd_version"
      flock -u 9
      return 0
    fi
    kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || { tail -20 "$dir/kube-apiserver.log" >&2; fail_up "kube-apiserver exited (log: $dir/kube-apiserver.log)"; }
    kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || { tail -20 "$dir/etcd.log" >&2; fail_up "etcd exited (log: $dir/etcd.log)"; }
    [ $((i % 20)) -eq 0 ] && say "  ... waiting for /readyz ($((i / 4))s)"
    sleep 0.25
  done
  fail_up "kube-apiserver not ready after 60s (log: $dir/kube-apiserver.log)"
}

stop_processes() {
  local name pid
  for name in kube-apiserver etcd; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    # Only signal the process if it still is ours (pids are reused after a reboot).
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/$name.pid"
  done
}

down() {
  [ -d "$dir" ] || { say "not running"; return 0; }
  stop_processes
  rm -rf "$dir"
  say "stopped and removed $dir"
}

status() {
  if running; then
    printf 'running: https://127.0.0.1:%s, kube-apiserver %s, etcd %s\n' "$api_port" \
      "$(admin_curl "https://127.0.0.1:$api_port/version" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')" "$etcd_version"
  else
    echo "not running"
    return 1
  fi
}

env_out() {
  if [ "${1:-}" = "--json" ]; then
    printf '{"kubeconfig":"%s","kubectl":"%s","server":"https://127.0.0.1:%s","kubeVersion":"%s","etcdVersion":"%s"}\n' \
      "$dir/kubeconfig" "$kube_bin/kubectl" "$api_port" "$kube_version" "$etcd_version"
  else
    printf 'export KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$dir/kubeconfig" "$kube_bin"
  fi
}

case "${1:-}" in
  build) build ;;
  up) up; [ "${2:-}" = "--quiet" ] || env_out ;;
  down) down ;;
  status) status ;;
  env) env_out "${2:-}" ;;
  kubectl-path) echo "$kube_bin/kubectl" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
