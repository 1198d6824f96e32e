#!/usr/bin/env bash
# Container images built on this machine (no registry is reachable: nothing
# is pulled, not even the pod sandbox image) with buildah, FROM scratch, as
# OCI archives cached in $RP_CACHE_DIR/images/ by content, and imported into
# a cluster's containerd:
#
#   e2e/image.sh operator        the operator: a static (musl) build of
#                                releasepassport on the runtime layout of the
#                                Dockerfile's final stage (read from it)
#   e2e/image.sh base            the pause image and the test workloads
#   e2e/image.sh ref NAME        NAME@sha256:<digest> of pause, workload-v1,
#                                workload-v2, workload-v3-crash,
#                                workload-unready or operator (built if needed)
#   e2e/image.sh path operator   the OCI archive of the latest operator image
#   e2e/image.sh load SOCK ARCHIVE...   import into containerd at SOCK
#   e2e/image.sh lint            check that the Dockerfile's final stage is
#                                one this script reproduces
#
# Each build prints the OCI archive's path on standard output and its
# progress on standard error. RP_IMAGE_PROFILE=release builds the operator
# with the release profile (default: dev, which compiles faster; both static).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=../hack/env.sh
. "$repo/hack/env.sh"
cache=$rp_cache/images
registry=rp.local
# Bump when the way images are assembled changes.
recipe=2

say() { printf '[image] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

buildah_() {
  buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver vfs "$@"
}

key_of() { cat "$@" | { cat; printf 'recipe %s\n' "$recipe"; } | sha256sum | cut -c1-16; }

# The Dockerfile's final stage, as JSON: base image, the binary's path, user,
# ports, entrypoint and command. Anything else in that stage is an error, so
# that a change to the Dockerfile cannot silently leave the local image behind.
dockerfile_runtime() {
  python3 - "$repo/Dockerfile" <<'PY'
import json, re, shlex, sys
lines, cur = [], ""
for raw in open(sys.argv[1]):
    line = raw.rstrip("\n")
    if not cur and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if line.endswith("\\"):
        cur += line[:-1] + " "
        continue
    lines.append(cur + line)
    cur = ""
stages, stage = [], None
for line in lines:
    op, _, arg = line.strip().partition(" ")
    op = op.upper()
    if op == "FROM":
        stage = {"from": arg.split()[0], "alias": arg.split()[-1] if " AS " in arg.upper() else None, "ops": []}
        stages.append(stage)
    elif stage is not None:
        stage["ops"].append((op, arg.strip()))
build, final = stages[0], stages[-1]
def fail(msg):
    sys.exit(f"[image] error: Dockerfile: {msg}; e2e/image.sh reproduces only what it knows (update both)")
if not re.fullmatch(r"gcr\.io/distroless/static(-debian\d+)?:nonroot", final["from"]):
    fail(f"final stage FROM {final['from']} is not distroless/static:nonroot")
built = " ".join(arg for op, arg in build["ops"] if op == "RUN")
if "unknown-linux-musl" not in built or "--bin releasepassport" not in built:
    fail("the build stage no longer builds releasepassport for the musl target")
out = {"base": final["from"], "user": None, "expose": [], "entrypoint": None, "cmd": None, "binary": None}
for op, arg in final["ops"]:
    if op == "COPY":
        words = shlex.split(arg)
        if words[0] != f"--from={build['alias']}" or len(words) != 3 or not words[1].endswith("/releasepassport"):
            fail(f"COPY {arg} is not the build stage's binary")
        out["binary"] = words[2]
    elif op == "USER":
        out["user"] = arg
    elif op == "EXPOSE":
        out["expose"] += arg.split()
    elif op in ("ENTRYPOINT", "CMD"):
        try:
            out[op.lower()] = json.loads(arg)
        except ValueError:
            fail(f"{op} {arg} is not in JSON (exec) form")
    else:
        fail(f"instruction {op} in the final stage")
for k in ("user", "entrypoint", "cmd", "binary"):
    if out[k] is None:
        fail(f"the final stage has no {k.upper()}")
print(json.dumps(out))
PY
}

# rootfs DIR: what distroless/static:nonroot provides (the Dockerfile's
# base): users root, nobody and nonroot (65532), CA certificates, /tmp and
# the nonroot home. No shell, no package manager, no libc.
distroless_rootfs() {
  local root=$1 ca=/etc/ssl/certs/ca-certificates.crt
  [ -f "$ca" ] || die "$ca is missing (apt-get install ca-certificates)"
  mkdir -p "$root"/{etc/ssl/certs,tmp,home/nonroot,root}
  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  cp "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  chown 65532:65532 "$root/home/nonroot"
}

# commit NAME TAG ROOTFS CONFIG-ARGS...: a FROM-scratch image of ROOTFS,
# written as an OCI archive; prints the archive's path.
commit() {
  local name=$1 tag=$2 rootfs=$3 archive=$cache/$1-$2.tar
  shift 3
  if [ -f "$archive" ] && [ -f "$archive.ref" ]; then
    printf '%s\n' "$archive"
    return 0
  fi
  local ctr digest
  ctr=$(buildah_ from scratch)
  buildah_ copy --quiet "$ctr" "$rootfs/" / >/dev/null
  buildah_ config "$@" --label "io.releasepassport.image=$name" "$ctr"
  # A fixed creation time: the same inputs give the same digest.
  buildah_ commit --quiet --format oci --timestamp 0 --rm "$ctr" "$registry/$name:$tag" >/dev/null
  rm -f "$archive.tmp"
  buildah_ push --quiet --disable-compression "$registry/$name:$tag" "oci-archive:$archive.tmp:$registry/$name:$tag" >/dev/null 2>&1 ||
    buildah_ push --disable-compression "$registry/$name:$tag" "oci-archive:$archive.tmp:$registry/$name:$tag" >&2
  buildah_ rmi "$registry/$name:$tag" >/dev/null 2>&1 || true
  digest=$(tar -xOf "$archive.tmp" index.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
  mv "$archive.tmp" "$archive"
  printf '%s %s@%s\n' "$registry/$name:$tag" "$registry/$name" "$digest" >"$archive.ref"
  say "built $registry/$name:$tag ($registry/$name@$digest) -> $archive"
  printf '%s\n' "$archive"
}

with_lock() {
  mkdir -p "$cache"
  exec 6>"$cache/.lock"
  flock 6
}

build_base() {
  rp_require musl-gcc "the pause image is a static C program: apt-get install musl-tools"
  rp_require buildah "images are built with buildah: apt-get install buildah"
  rp_require go "the test workload is a Go program"
  with_lock
  local key work
  key=$(key_of "$here/node/pause/pause.c" "$here/node/workload/main.go" "$here/node/workload/go.mod" "$0")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  if [ ! -f "$cache/pause-$key.tar.ref" ]; then
    mkdir -p "$work/pause"
    musl-gcc -static -Os -s -o "$work/pause/pause" "$here/node/pause/pause.c"
    commit pause "$key" "$work/pause" --entrypoint '["/pause"]' --user 65535:65535 >/dev/null
  fi
  if [ ! -f "$cache/workload-unready-$key.tar.ref" ]; then
    mkdir -p "$work/workload"
    (cd "$here/node/workload" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/workload/workload" .)
    local variant
    # Releases of one service: same program, behaviour fixed by the image.
    for variant in "v1 healthy 0.003" "v2 healthy 0.004" "v3-crash crash 0.5" "unready unready 0"; do
      set -- $variant
      commit workload "$1-$key" "$work/workload" --entrypoint '["/workload"]' --user 65532:65532 \
        --port 8080 --env "WORKLOAD_RELEASE=$1" --env "WORKLOAD_MODE=$2" --env "WORKLOAD_ERROR_RATE=$3" >/dev/null
    done
  fi
  local name
  for name in pause workload-v1 workload-v2 workload-v3-crash workload-unready; do
    printf '%s\n' "$cache/$name-$key.tar"
  done
}

build_operator() {
  rp_require musl-gcc "ring compiles C for the musl target: apt-get install musl-tools"
  rp_require buildah "images are built with buildah: apt-get install buildah"
  local target=x86_64-unknown-linux-musl profile=${RP_IMAGE_PROFILE:-dev} runtime out start
  runtime=$(dockerfile_runtime)
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    say "adding the Rust standard library for $target (rustup)"
    rustup target add "$target" >&2
  fi
  start=$(date +%s)
  say "building releasepassport for $target ($profile profile; static, as in the Dockerfile)"
  (cd "$repo" && CC_x86_64_unknown_linux_musl=musl-gcc nice -n 5 cargo build --locked --bin releasepassport \
    --target "$target" --profile "$profile" >&2)
  local dir=$profile
  [ "$profile" = dev ] && dir=debug
  out=${CARGO_TARGET_DIR:-$repo/target}/$target/$dir/releasepassport
  if readelf -l "$out" | grep -q 'Requesting program interpreter'; then
    die "$out is dynamically linked; the image needs a static binary"
  fi
  say "compiled in $(( $(date +%s) - start ))s"
  with_lock
  local work key binary user entrypoint cmd ports=()
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  binary=$(jq_ "$runtime" binary)
  mkdir -p "$work/rootfs$(dirname "$binary")"
  distroless_rootfs "$work/rootfs"
  strip -o "$work/rootfs$binary" "$out"
  key=$( (sha256sum <"$work/rootfs$binary"; printf '%s\n' "$runtime") | key_of /dev/stdin)
  user=$(jq_ "$runtime" user)
  entrypoint=$(jq_ "$runtime" entrypoint)
  cmd=$(jq_ "$runtime" cmd)
  # EXPOSE 8080 means 8080/tcp, as Docker records it.
  for p in $(jq_ "$runtime" expose); do
    case "$p" in */*) ports+=(--port "$p") ;; *) ports+=(--port "$p/tcp") ;; esac
  done
  commit release-passport "dev-$key" "$work/rootfs" --user "$user" --entrypoint "$entrypoint" --cmd "$cmd" \
    "${ports[@]}" --label "org.opencontainers.image.base.name=$(jq_ "$runtime" base)"
  # Which image this checkout built, beside the binary it holds: worktrees
  # and CI share the image cache, not their cargo output.
  printf '%s\n' "$cache/release-passport-dev-$key.tar" >"$(operator_pointer)"
  # Operator images of older sources, unused for a day, go.
  find "$cache" -maxdepth 1 -name 'release-passport-dev-*.tar*' -mtime +1 -delete 2>/dev/null || true
}

operator_pointer() {
  printf '%s\n' "${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/releasepassport.image"
}

# jq_ JSON KEY: a field of dockerfile_runtime's JSON (lists space-separated
# for EXPOSE, as JSON for ENTRYPOINT/CMD).
jq_() {
  python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]
print(" ".join(v) if sys.argv[2] == "expose" else (json.dumps(v) if isinstance(v, list) else v))' "$1" "$2"
}

load() {
  local sock=$1 archive tag digest_ref
  shift
  for archive in "$@"; do
    read -r tag digest_ref <"$archive.ref"
    if ctr --address "$sock" --namespace k8s.io images check "name==$digest_ref" 2>/dev/null | grep -q complete; then
      continue
    fi
    ctr --address "$sock" --namespace k8s.io images import "$archive" >/dev/null ||
      die "ctr images import $archive failed"
    # The digest reference is what Pods name and what the kubelet reports
    # in Pod status (imageID).
    ctr --address "$sock" --namespace k8s.io images tag --force "$tag" "$digest_ref" >/dev/null
    say "loaded $digest_ref"
  done
}

ref() {
  local name=$1 archive
  case "$name" in
    operator)
      archive=$(cat "$(operator_pointer)" 2>/dev/null) || die "no operator image yet: bash e2e/image.sh operator" ;;
    *)
      archive=$(build_base | grep "/$name-[0-9a-f]*\.tar$") || die "unknown image $name" ;;
  esac
  cut -d' ' -f2 <"$archive.ref"
}

case "${1:-}" in
  operator) build_operator ;;
  base) build_base ;;
  ref) [ $# -eq 2 ] || die "usage: $0 ref NAME"; ref "$2" ;;
  path)
    [ "${2:-}" = operator ] || die "usage: $0 path operator"
    cat "$(operator_pointer)" 2>/dev/null || die "no operator image yet: bash e2e/image.sh operator" ;;
  load) [ $# -ge 2 ] || die "usage: $0 load SOCK ARCHIVE..."; shift; load "$@" ;;
  lint) dockerfile_runtime >/dev/null && say "Dockerfile: the final stage is one e2e/image.sh reproduces" ;;
  runtime) dockerfile_runtime ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
