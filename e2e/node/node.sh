# shellcheck shell=bash
# The node of the local cluster, sourced by e2e/cluster.sh: containerd + runc,
# kubelet and kube-proxy in a network namespace of their own, CNI bridge
# networking inside it, kube-controller-manager and kube-scheduler beside the
# apiserver. Everything a cluster creates is named after, or lives under, its
# directory, so that `down` can remove all of it and two clusters can run on
# one machine:
#
#   $dir/node/                       containerd root and state, kubelet root,
#                                    pod logs, CNI configuration and IPAM
#   network namespace rp-<id>        the node's network: eth0, cni0, Pods,
#                                    kube-proxy's iptables rules
#   veth rp-<id> (host side)         172.31.<slot>.1 <-> 172.31.<slot>.2 (node)
#   host routes                      Pods 10.(160+slot).0.0/16 and Services
#                                    10.(192+slot).0.0/16 via the node
#   cgroups /rp-<id>/                every Pod's cgroup (all v1 hierarchies)
#   /run/release-passport/slots/N    which cluster holds slot N (0-31)
#
# <id> is derived from the cluster directory. The node namespace has no
# default route: Pods reach the apiserver (on the host end of the veth) and
# each other, nothing beyond this machine.

node_name=release-passport-node
node_registry=/run/release-passport
# Kernel settings the kubelet changes (host-wide, not per namespace): saved by
# the first node cluster that starts, restored when the last one stops.
node_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# node_vars: names and addresses of this cluster's node (needs $dir).
node_vars() {
  node_dir=$dir/node
  node_id=$(printf '%s' "$(realpath -m "$dir")" | sha256sum | cut -c1-8)
  node_ns=rp-$node_id
  node_veth=rp-$node_id
  node_cgroup=/rp-$node_id
  node_sock=$node_dir/containerd/containerd.sock
  node_slot=$(cat "$node_dir/slot" 2>/dev/null || true)
  if [ -n "$node_slot" ]; then
    host_ip=172.31.$node_slot.1
    node_ip=172.31.$node_slot.2
    pod_cidr=10.$((160 + node_slot)).0.0/16
    service_cidr=10.$((192 + node_slot)).0.0/16
    kubernetes_service_ip=10.$((192 + node_slot)).0.1
  fi
}

node_require() {
  local tool
  for tool in containerd containerd-shim-runc-v2 runc ctr iptables iptables-save iptables-restore nsenter ip buildah musl-gcc; do
    command -v "$tool" >/dev/null 2>&1 ||
      die "$tool is missing: the one-node cluster needs containerd, runc, buildah, iptables, containernetworking-plugins and musl-tools (make deps, or bash hack/install-deps.sh node)"
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    die "the CNI plugins are missing from /usr/lib/cni (apt-get install containernetworking-plugins)"
  [ "$(id -u)" -eq 0 ] || die "the one-node cluster runs containers, network namespaces and cgroups: run it as root"
}

# A free slot (0-31) for this cluster's addresses, held in $node_registry.
node_slot_allocate() {
  mkdir -p "$node_registry/slots" "$node_dir"
  exec 7>"$node_registry/.lock"
  flock 7
  local s owner
  if [ -n "$node_slot" ] && [ "$(cat "$node_registry/slots/$node_slot" 2>/dev/null)" = "$dir" ]; then
    flock -u 7
    return 0
  fi
  for s in $(seq 0 31); do
    owner=$(cat "$node_registry/slots/$s" 2>/dev/null || true)
    # A slot whose cluster directory is gone is free again.
    if [ -z "$owner" ] || [ ! -d "$owner/node" ]; then
      printf '%s\n' "$dir" >"$node_registry/slots/$s"
      printf '%s\n' "$s" >"$node_dir/slot"
      flock -u 7
      node_vars
      return 0
    fi
  done
  flock -u 7
  die "32 one-node clusters already run on this machine (see $node_registry/slots)"
}

node_slot_release() {
  [ -n "$node_slot" ] || return 0
  exec 7>"$node_registry/.lock"
  flock 7
  [ "$(cat "$node_registry/slots/$node_slot" 2>/dev/null)" = "$dir" ] && rm -f "$node_registry/slots/$node_slot"
  # The last node cluster gives the kernel settings back.
  if [ -z "$(ls -A "$node_registry/slots" 2>/dev/null)" ] && [ -f "$node_registry/sysctl.saved" ]; then
    local name value
    while read -r name value; do sysctl -qw "$name=$value" 2>/dev/null || true; done <"$node_registry/sysctl.saved"
    rm -f "$node_registry/sysctl.saved"
    say "restored the kernel settings the kubelet had changed (${node_sysctls[*]})"
  fi
  # The kubelet's device-plugin socket has a fixed path; the last node
  # cluster removes it and its directory (and /var/lib/kubelet if empty).
  if [ -z "$(ls -A "$node_registry/slots" 2>/dev/null)" ]; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
  fi
  flock -u 7
}

node_sysctl_save() {
  exec 7>"$node_registry/.lock"
  flock 7
  if [ ! -f "$node_registry/sysctl.saved" ]; then
    local name
    for name in "${node_sysctls[@]}"; do printf '%s %s\n' "$name" "$(sysctl -n "$name")"; done >"$node_registry/sysctl.saved"
  fi
  flock -u 7
}

# The node's network namespace, the veth to it, and the host routes into it.
node_network_up() {
  if ! ip netns list | grep -qw "$node_ns"; then
    ip netns add "$node_ns"
  fi
  if ! ip link show "$node_veth" >/dev/null 2>&1; then
    ip link add "$node_veth" type veth peer name eth0 netns "$node_ns"
  fi
  ip addr replace "$host_ip/30" dev "$node_veth"
  ip link set "$node_veth" up
  ip -n "$node_ns" addr replace "$node_ip/30" dev eth0
  ip -n "$node_ns" link set eth0 up
  ip -n "$node_ns" link set lo up
  ip route replace "$pod_cidr" via "$node_ip" dev "$node_veth"
  ip route replace "$service_cidr" via "$node_ip" dev "$node_veth"
  # Inside the node: forward between eth0 and the Pods' bridge, and let
  # kube-proxy's rules see bridged traffic (Pod -> Service -> Pod).
  ip netns exec "$node_ns" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$node_ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null ||
    say "warning: net.bridge.bridge-nf-call-iptables is not available in the node namespace (br_netfilter)"
}


node_pki() {
  local p=$dir/pki
  [ -f "$p/kubelet.crt" ] && return 0
  (
    cd "$p"
    sign_cert kubelet "/O=system:nodes/CN=system:node:$node_name" \
      "subjectAltName=IP:$node_ip,DNS:$node_name
extendedKeyUsage=serverAuth,clientAuth"
    sign_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    sign_cert controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
    sign_cert scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
    sign_cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  )
}

node_configs() {
  mkdir -p "$node_dir"/{containerd,cni/net.d,cni/ipam,kubelet,pod-logs}
  write_kubeconfig "$node_dir/controller-manager.kubeconfig" "https://127.0.0.1:$api_port" controller-manager
  write_kubeconfig "$node_dir/scheduler.kubeconfig" "https://127.0.0.1:$api_port" scheduler
  # The kubelet and kube-proxy run in the node's namespace: the apiserver is
  # on the host end of the veth.
  write_kubeconfig "$node_dir/kubelet.kubeconfig" "https://$host_ip:$api_port" kubelet
  write_kubeconfig "$node_dir/kube-proxy.kubeconfig" "https://$host_ip:$api_port" kube-proxy

  cat >"$node_dir/containerd.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
# Container processes may not lower their oom_score_adj on this machine
# (writing a negative value is refused): keep the kubelet's values at or
# above containerd's own.
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$node_sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$node_dir/containerd/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
    max_conf_num = 1
EOF

  cat >"$node_dir/cni/net.d/10-release-passport.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "rp-$node_id",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node_dir/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr"}]],
        "routes": [{"dst": "$service_cidr"}, {"dst": "$host_ip/32"}]
      }
    }
  ]
}
EOF

  cat >"$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $dir/pki/kubelet.crt
tlsPrivateKeyFile: $dir/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$node_sock
# cgroup v1 on this machine: cgroupfs, and say so explicitly.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: $node_cgroup
failSwapOn: false
podLogsDir: $node_dir/pod-logs
# No cluster DNS, and no resolver of the host's inside Pods.
resolvConf: ""
# Images are built here and cannot be pulled again: never collect them, and
# do not evict Pods for a disk that other work fills.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
serializeImagePulls: false
syncFrequency: 10s
shutdownGracePeriod: 0s
EOF

  cat >"$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $node_dir/kube-proxy.kubeconfig}
hostnameOverride: $node_name
mode: iptables
clusterCIDR: $pod_cidr
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Host-wide settings are left alone: oom_score_adj cannot be lowered here,
# and the conntrack table size is not per namespace.
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {syncPeriod: 10s, minSyncPeriod: 0s}
nodePortAddresses: [primary]
EOF
}

# The cgroup under which the kubelet puts every Pod, in every v1 hierarchy.
node_cgroups_up() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h${node_cgroup#/}"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h${node_cgroup#/}/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h${node_cgroup#/}/cpuset.mems"
    fi
  done
}

node_start_containerd() {
  start_process containerd nsenter --net="/run/netns/$node_ns" -- containerd --config "$node_dir/containerd.toml" --log-level warn
  local i
  for i in $(seq 1 100); do
    ctr_node version >/dev/null 2>&1 && return 0
    process_alive containerd || { tail -20 "$dir/containerd.log" >&2; fail_up "containerd exited (log: $dir/containerd.log)"; }
    sleep 0.1
  done
  fail_up "containerd did not answer on $node_sock (log: $dir/containerd.log)"
}

ctr_node() { ctr --address "$node_sock" --namespace k8s.io "$@"; }

# The images every cluster needs (pause, the test workloads), built once and
# imported into this node's containerd.
node_load_images() {
  local images
  images=$(bash "$here/image.sh" base) || fail_up "building the node's images failed"
  bash "$here/image.sh" load "$node_sock" $images >&2 || fail_up "importing the images into containerd failed"
}

node_start_controllers() {
  start_process kube-controller-manager "$kube_bin/kube-controller-manager" \
    --kubeconfig "$node_dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$node_dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$node_dir/controller-manager.kubeconfig" \
    --secure-port 0 --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --cluster-signing-cert-file "$dir/pki/ca.crt" --cluster-signing-key-file "$dir/pki/ca.key" \
    --service-cluster-ip-range "$service_cidr" --cluster-cidr "$pod_cidr" --v=1
  start_process kube-scheduler "$kube_bin/kube-scheduler" \
    --kubeconfig "$node_dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$node_dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$node_dir/scheduler.kubeconfig" \
    --secure-port 0 --leader-elect=false --v=1
}

node_start_agents() {
  node_sysctl_save
  start_process kubelet nsenter --net="/run/netns/$node_ns" -- "$kube_bin/kubelet" --config "$node_dir/kubelet.yaml" \
    --kubeconfig "$node_dir/kubelet.kubeconfig" --root-dir "$node_dir/kubelet" \
    --hostname-override "$node_name" --node-ip "$node_ip" --v=1
  start_process kube-proxy nsenter --net="/run/netns/$node_ns" -- "$kube_bin/kube-proxy" --config "$node_dir/kube-proxy.yaml" --v=1
}

node_kubectl() { "$kube_bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }

# Readiness: the node is Ready, a Pod runs, and its Service routes.
node_wait_ready() {
  local i
  for i in $(seq 1 240); do
    [ "$(node_kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
    for name in containerd kubelet kube-proxy kube-controller-manager kube-scheduler; do
      process_alive "$name" || { tail -20 "$dir/$name.log" >&2; fail_up "$name exited (log: $dir/$name.log)"; }
    done
    [ $((i % 20)) -eq 0 ] && say "  ... waiting for node $node_name to be Ready ($((i / 4))s)"
    sleep 0.25
  done
  [ "$i" -lt 240 ] || fail_up "node $node_name not Ready after 60s (logs: $dir/kubelet.log)"
  say "node $node_name is Ready ($node_ip, Pods $pod_cidr, Services $service_cidr)"
  local image
  image=$(bash "$here/image.sh" ref workload-v1) || fail_up "no workload image"
  node_kubectl create namespace cluster-check >/dev/null 2>&1 || true
  # The ServiceAccount controller gives every namespace its default account.
  for i in $(seq 1 120); do
    node_kubectl -n cluster-check get serviceaccount default >/dev/null 2>&1 && break
    sleep 0.25
  done
  node_kubectl apply -f - >/dev/null <<EOF || fail_up "could not create the check Pod"
apiVersion: v1
kind: Pod
metadata: {name: check, namespace: cluster-check, labels: {app: check}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: workload
      image: $image
      imagePullPolicy: Never
      ports: [{containerPort: 8080}]
      readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: check, namespace: cluster-check}
spec:
  selector: {app: check}
  ports: [{port: 80, targetPort: 8080}]
EOF
  node_kubectl -n cluster-check wait --for condition=Ready pod/check --timeout=90s >/dev/null ||
    { node_kubectl -n cluster-check describe pod check >&2; fail_up "the check Pod did not become Ready"; }
  local ip answer=""
  ip=$(node_kubectl -n cluster-check get service check -o jsonpath='{.spec.clusterIP}')
  for i in $(seq 1 40); do
    answer=$(curl -sS --max-time 2 "http://$ip/" 2>/dev/null) && break
    sleep 0.25
  done
  [ -n "$answer" ] || fail_up "Service cluster-check/check ($ip) does not route to its Pod (kube-proxy log: $dir/kube-proxy.log)"
  say "a Pod runs and its Service routes: http://$ip/ -> $answer"
  node_kubectl delete namespace cluster-check --wait=false >/dev/null
}

# Everything a node leaves behind, in order: processes (kubelet first, so it
# does not restart containers), container processes and shims, mounts,
# cgroups, the network namespace and its veth, CNI leftovers. Safe to run
# on a node that is half up or already gone.
node_cleanup() {
  node_vars
  local name pid ids
  # The sandboxes and containers this node's containerd ran (their ids name
  # libcni's cached results).
  ids=$(ls "$node_dir/containerd/state/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null || true)
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager; do stop_process "$name"; done
  # Every process in the node's Pods, whatever state containerd is in.
  node_kill_cgroup_processes
  # The shims of this containerd (they outlive it by design).
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $node_sock" 2>/dev/null || true); do
    kill -9 "$pid" 2>/dev/null || true
  done
  stop_process containerd
  node_unmount_all
  node_remove_cgroups
  if ip netns list 2>/dev/null | grep -qw "$node_ns"; then
    ip netns del "$node_ns" 2>/dev/null || true
  fi
  ip link del "$node_veth" 2>/dev/null || true
  if [ -n "$node_slot" ]; then
    ip route del "$pod_cidr" 2>/dev/null || true
    ip route del "$service_cidr" 2>/dev/null || true
  fi
  # libcni's result cache names our network, or the loopback network and a
  # sandbox of ours; the kubelet's log links point into our directory.
  rm -f /var/lib/cni/results/"rp-$node_id"-* 2>/dev/null || true
  local id
  for id in $ids; do rm -f "/var/lib/cni/results/cni-loopback-$id-lo"; done
  local link
  for link in /var/log/containers/*.log; do
    [ -L "$link" ] || continue
    case "$(readlink "$link")" in "$node_dir"/*) rm -f "$link" ;; esac
  done
}

node_kill_cgroup_processes() {
  local h procs pid round
  for round in 1 2 3; do
    procs=""
    for h in /sys/fs/cgroup/*/"${node_cgroup#/}"; do
      [ -d "$h" ] || continue
      # Cgroups vanish while we walk them (their Pods are dying): not an error.
      procs+=" $(find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ' || true)"
    done
    [ -n "${procs// /}" ] || return 0
    for pid in $procs; do kill -9 "$pid" 2>/dev/null || true; done
    sleep 0.2
  done
}

# Unmount everything under the node's directory, deepest first (overlay
# root filesystems, Pod volumes, the Pods' network namespaces, /dev/shm).
node_unmount_all() {
  local mnt round
  for round in 1 2 3; do
    local mounts
    mounts=$(awk -v d="$node_dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -n "$mounts" ] || return 0
    while read -r mnt; do
      mnt=$(printf '%b' "$mnt")
      umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done <<<"$mounts"
  done
  say "warning: mounts left under $node_dir: $(awk -v d="$node_dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')"
}

node_remove_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/"${node_cgroup#/}"; do
    [ -d "$h" ] || continue
    # Depth first: a cgroup is removed once its children are.
    find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$h" ] && say "warning: cgroup $h could not be removed (processes still in it?)"
  done
  return 0
}

node_running() {
  local name
  for name in containerd kubelet kube-proxy kube-controller-manager kube-scheduler; do
    process_alive "$name" || return 1
  done
  [ "$(node_kubectl get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
