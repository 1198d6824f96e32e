#!/usr/bin/env bash
# A real local Kubernetes cluster for the end-to-end suite, the demo and CI:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and one node
# (containerd + runc, kubelet, kube-proxy, CNI bridge networking) compiled or
# installed by the project's scripts, cached outside the clone by version.
#
#   e2e/cluster.sh build         build (or reuse) the binaries
#   e2e/cluster.sh up            start the one-node cluster (idempotent)
#   e2e/cluster.sh down          stop it, remove its data, mounts, network
#                                devices, routes and cgroups
#   e2e/cluster.sh status        say whether it runs, and the server version
#   e2e/cluster.sh env           print `export KUBECONFIG=...` (add --json for scripts)
#
# With --control-plane-only first (e2e/cluster.sh --control-plane-only up),
# the same commands act on a cluster of etcd and kube-apiserver alone, in
# $RP_CLUSTER_DIR/control-plane-only on the next ports: no Pod ever runs and
# no controller rewrites what a test writes (tests/cluster_*.rs use it).
#
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport),
# RP_CLUSTER_DIR (default $RP_CACHE_DIR/cluster), RP_ETCD_PORT (23790),
# RP_APISERVER_PORT (26443).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../hack/env.sh
. "$here/../hack/env.sh"
# shellcheck source=node/node.sh
. "$here/node/node.sh"
cache=$rp_cache
kind=node
if [ "${1:-}" = --control-plane-only ]; then
  kind=control-plane
  shift
fi
dir=${RP_CLUSTER_DIR:-$cache/cluster}
etcd_port=${RP_ETCD_PORT:-23790}
api_port=${RP_APISERVER_PORT:-26443}
if [ "$kind" = control-plane ]; then
  dir=$dir/control-plane-only
  etcd_port=$((etcd_port + 1))
  api_port=$((api_port + 1))
fi
etcd_peer_port=$((etcd_port + 10))
node_vars

kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$here/kubernetes/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3; exit}' "$here/etcd/go.mod")
# The -r suffix is the build recipe: bump it when the flags below change.
kube_bin=$cache/bin/kubernetes-$kube_version-r3
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

# go_build OUT MODULE_DIR LABEL LDFLAGS PACKAGE...: compile the packages from
# the pinned module in ONE `go build -o DIR/`, so that the packages they share
# compile once; OUT is a directory holding one binary per package.
go_build() {
  local out=$1 moddir=$2 label=$3 ldflags=$4 start beat rc=0
  shift 4
  [ -f "$out/.complete" ] && return 0
  command -v go >/dev/null || die "the Go toolchain is needed to build $label (https://go.dev/doc/install)"
  mkdir -p "$(dirname "$out")"
  start=$(date +%s)
  say "building $label from the Go module proxy (once per version; several minutes on 2 cores)..."
  # A heartbeat so that long, silent compiles still show progress.
  ( while sleep 30; do say "  ... still building $label ($(( $(date +%s) - start ))s)"; done ) &
  beat=$!
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  (cd "$moddir" && go build -trimpath -ldflags "-s -w$ldflags" -o "$out.tmp/" "$@") || rc=$?
  kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
  [ "$rc" -eq 0 ] || die "building $label failed (go build $* in $moddir)"
  printf '%s\n' "$(( $(date +%s) - start ))" >"$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "built $label in $(( $(date +%s) - start ))s -> $out"
}

# The Kubernetes components the cluster runs: one build, one directory.
kube_packages=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)

build() {
  mkdir -p "$cache/bin"
  exec 8>"$cache/bin/.build.lock"
  flock 8
  if [ ! -x "$etcd_bin/etcd" ]; then
    go_build "$etcd_bin" "$here/etcd" "etcd $etcd_version" "" go.etcd.io/etcd/server/v3
    mv "$etcd_bin/server" "$etcd_bin/etcd"
  fi
  go_build "$kube_bin" "$here/kubernetes" "Kubernetes $kube_version (${kube_packages[*]})" "$(kube_ldflags)" \
    "${kube_packages[@]/#/k8s.io/kubernetes/cmd/}"
  flock -u 8
}

admin_curl() {
  curl -sS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" "$@"
}

# Background processes of the cluster: $dir/NAME.pid and $dir/NAME.log.
start_process() {
  local name=$1
  shift
  setsid "$@" >"$dir/$name.log" 2>&1 </dev/null 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$dir/$name.pid"
}

process_alive() {
  [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null
}

stop_process() {
  local name=$1 pid
  [ -f "$dir/$name.pid" ] || return 0
  pid=$(cat "$dir/$name.pid")
  # Only signal the process if it still is ours (pids are reused after a reboot).
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

running() {
  process_alive kube-apiserver && process_alive etcd &&
    [ "$(admin_curl "https://127.0.0.1:$api_port/readyz" 2>/dev/null)" = "ok" ] &&
    { [ "$kind" = control-plane ] || node_running; }
}

# sign_cert NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt signed by the
# cluster's CA (run in the pki directory).
sign_cert() {
  printf '%s\n' "$3" >"$1.ext"
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  chmod 600 "$1.key"
}

pki() {
  local p=$dir/pki sans="IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # Pods reach the apiserver at the kubernetes Service's IP, routed to the
  # host end of the node's veth.
  [ "$kind" = node ] && sans+=",IP:$host_ip,IP:$kubernetes_service_ip"
  if [ ! -f "$p/admin.crt" ]; then
    say "generating certificates and service-account signing keys in $p"
    mkdir -p "$p"
    (
      cd "$p"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=release-passport-local-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
      sign_cert apiserver "/CN=kube-apiserver" "subjectAltName=$sans
extendedKeyUsage=serverAuth"
      sign_cert admin "/O=system:masters/CN=release-passport-admin" "extendedKeyUsage=clientAuth"
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
      chmod 600 ./*.key
    )
  fi
  [ "$kind" = node ] && node_pki
  return 0
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

# The console's OpenID Connect issuer (issue 17): the apiserver trusts ID
# tokens of https://127.0.0.1:$RP_OIDC_PORT (default: the apiserver's port
# + 2) for the audience release-passport-console, through structured
# authentication configuration (pki/authentication.yaml; the apiserver
# re-reads it when it changes). Tests run e2e/tools/oidc-provider on that
# port with pki/oidc.crt and pki/oidc.key, signed by the cluster's CA.
# User names are oidc:<email>, groups oidc:<group>.
oidc_port=${RP_OIDC_PORT:-$((api_port + 2))}
oidc() {
  local p=$dir/pki
  [ -f "$p/oidc.crt" ] || (cd "$p" && sign_cert oidc "/CN=release-passport-oidc" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth")
  cat >"$p/authentication.yaml.tmp" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: https://127.0.0.1:$oidc_port
    audiences: [release-passport-console]
    certificateAuthority: |
$(sed 's/^/      /' "$p/ca.crt")
  claimMappings:
    username: {claim: email, prefix: "oidc:"}
    groups: {claim: groups, prefix: "oidc:"}
  claimValidationRules:
  - expression: claims.email_verified == true
    message: the email address must be verified
EOF
  mv "$p/authentication.yaml.tmp" "$p/authentication.yaml"
}

# write_kubeconfig FILE SERVER CERT: a kubeconfig for the client certificate
# pki/CERT.crt.
write_kubeconfig() {
  local b64="base64 -w0"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: release-passport-local
  cluster:
    server: $2
    certificate-authority-data: $($b64 <"$dir/pki/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $($b64 <"$dir/pki/$3.crt")
    client-key-data: $($b64 <"$dir/pki/$3.key")
contexts:
- name: release-passport-local
  context:
    cluster: release-passport-local
    user: $3
current-context: release-passport-local
EOF
  chmod 600 "$1"
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

up() {
  [ "$kind" = node ] && node_require
  build
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if running; then
    say "already running: https://127.0.0.1:$api_port ($kube_version$([ "$kind" = node ] && echo ", node $node_name"))"
    return 0
  fi
  stop_processes
  for port in "$etcd_port" "$etcd_peer_port" "$api_port"; do
    port_free "$port" || die "port $port is in use by another program; set RP_ETCD_PORT / RP_APISERVER_PORT"
  done
  if [ "$kind" = node ]; then
    node_slot_allocate
    pause_image=$(bash "$here/image.sh" ref pause) || die "building the pause image failed"
  fi
  pki
  tokens
  oidc
  write_kubeconfig "$dir/kubeconfig" "https://127.0.0.1:$api_port" admin
  local start
  start=$(date +%s%N)
  say "starting etcd $etcd_version on 127.0.0.1:$etcd_port"
  start_process etcd "$etcd_bin/etcd" --name default --data-dir "$dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "default=http://127.0.0.1:$etcd_peer_port" --unsafe-no-fsync --log-level warn
  # Without a node the apiserver listens on loopback only and publishes no
  # endpoint for the kubernetes Service; with one it also listens on the host
  # end of the node's veth, which the kubernetes Service points to.
  local bind=127.0.0.1 advertise=127.0.0.1 reconciler=none services=10.96.0.0/16 node_flags=()
  if [ "$kind" = node ]; then
    bind=0.0.0.0 advertise=$host_ip reconciler=lease services=$service_cidr
    node_flags=(--kubelet-client-certificate "$dir/pki/apiserver-kubelet-client.crt"
      --kubelet-client-key "$dir/pki/apiserver-kubelet-client.key"
      --kubelet-certificate-authority "$dir/pki/ca.crt" --kubelet-preferred-address-types InternalIP)
  fi
  say "starting kube-apiserver $kube_version on https://127.0.0.1:$api_port (RBAC, admission webhooks)"
  start_process kube-apiserver "$kube_bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$bind" --advertise-address "$advertise" --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" --token-auth-file "$dir/pki/tokens.csv" \
    --authentication-config "$dir/pki/authentication.yaml" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range "$services" \
    --authorization-mode Node,RBAC --endpoint-reconciler-type "$reconciler" \
    --enable-admission-plugins NodeRestriction,ValidatingAdmissionWebhook,MutatingAdmissionWebhook,ValidatingAdmissionPolicy \
    --allow-privileged=true --profiling=false --v=1 \
    "${node_flags[@]}"
  local i
  for i in $(seq 1 240); do
    [ "$(admin_curl "https://127.0.0.1:$api_port/readyz" 2>/dev/null)" = "ok" ] && break
    process_alive kube-apiserver || { tail -20 "$dir/kube-apiserver.log" >&2; fail_up "kube-apiserver exited (log: $dir/kube-apiserver.log)"; }
    process_alive etcd || { tail -20 "$dir/etcd.log" >&2; fail_up "etcd exited (log: $dir/etcd.log)"; }
    [ $((i % 20)) -eq 0 ] && say "  ... waiting for /readyz ($((i / 4))s)"
    sleep 0.25
  done
  [ "$i" -lt 240 ] || fail_up "kube-apiserver not ready after 60s (log: $dir/kube-apiserver.log)"
  say "control plane ready in $((($(date +%s%N) - start) / 1000000)) ms: kube-apiserver $kube_version, etcd $etcd_version"
  [ "$kind" = node ] && node_up
  local ms=$((($(date +%s%N) - start) / 1000000))
  printf '%s\n' "$ms" >"$dir/startup-ms"
  say "ready in ${ms} ms"
  flock -u 9
}

node_up() {
  say "starting the node: network namespace $node_ns, containerd, kubelet, kube-proxy"
  node_network_up
  node_configs
  node_cgroups_up
  node_start_containerd
  node_load_images
  node_start_controllers
  node_start_agents
  node_wait_ready
}

# Every process of the cluster, the node's first (a half-started cluster too).
stop_processes() {
  # Cleanup goes on past a step that fails (errexit is off in an || list).
  if [ "$kind" = node ] && [ -d "$dir/node" ]; then node_cleanup || say "warning: the node cleanup reported an error"; fi
  local name
  for name in kube-apiserver etcd; do stop_process "$name"; done
}

down() {
  [ -d "$dir" ] || { say "not running"; return 0; }
  # A control-plane-only cluster nested in this directory goes too.
  if [ "$kind" = node ] && [ -d "$dir/control-plane-only" ]; then bash "$0" --control-plane-only down; fi
  stop_processes
  if [ "$kind" = node ]; then node_slot_release; fi
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
    printf '{"kind":"%s","kubeconfig":"%s","kubectl":"%s","server":"https://127.0.0.1:%s","kubeVersion":"%s","etcdVersion":"%s"' \
      "$kind" "$dir/kubeconfig" "$kube_bin/kubectl" "$api_port" "$kube_version" "$etcd_version"
    # The OpenID Connect issuer the apiserver trusts (see oidc()), and the
    # certificate and key its server is to use.
    printf ',"oidcIssuer":"https://127.0.0.1:%s","oidcPort":%s,"oidcCert":"%s","oidcKey":"%s","caCert":"%s"' \
      "$oidc_port" "$oidc_port" "$dir/pki/oidc.crt" "$dir/pki/oidc.key" "$dir/pki/ca.crt"
    if [ "$kind" = node ]; then
      printf ',"containerdSocket":"%s","nodeName":"%s","nodeIP":"%s","hostIP":"%s","podCIDR":"%s","serviceCIDR":"%s","cgroupRoot":"%s","netns":"%s"' \
        "$node_sock" "$node_name" "$node_ip" "$host_ip" "$pod_cidr" "$service_cidr" "$node_cgroup" "$node_ns"
    fi
    printf '}\n'
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
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
