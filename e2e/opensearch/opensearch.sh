#!/usr/bin/env bash
# Builds a single-node OpenSearch server for the tests from Maven Central
# (the org.opensearch:opensearch server and its netty4 HTTP transport, at the
# versions pinned in e2e/opensearch/pom.xml) into the project cache, once per
# version, and prints the path of the script that starts it:
#   bash e2e/opensearch/opensearch.sh path
#   "$(bash e2e/opensearch/opensearch.sh path)" HOME HTTP_PORT TRANSPORT_PORT
# Needs a Java 17 JDK (java, javac) and Maven (mvn), as Debian packages them.
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../hack/env.sh
. "$here/../../hack/env.sh"
say() { printf '[opensearch] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

version=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$here/pom.xml")
[ -n "$version" ] || die "no opensearch.version in e2e/opensearch/pom.xml"
dir=$rp_cache/bin/opensearch-$version
run=$dir/opensearch-node

build() {
  local start
  rp_require mvn "to fetch OpenSearch from Maven Central: apt-get install maven"
  rp_require javac "to compile the node launcher: apt-get install openjdk-17-jdk-headless"
  mkdir -p "$rp_cache/bin"
  exec 8>"$rp_cache/bin/.build-opensearch.lock"
  flock 8
  [ -x "$run" ] && return 0
  start=$(date +%s)
  say "fetching OpenSearch $version from Maven Central into $dir (once per version)..."
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/classes"
  mvn -B -q -f "$here/pom.xml" -Dmaven.repo.local="$rp_cache/maven" \
    dependency:copy-dependencies -DoutputDirectory="$dir.tmp/lib" >&2 \
    || die "mvn dependency:copy-dependencies failed (e2e/opensearch/pom.xml)"
  javac -nowarn -cp "$dir.tmp/lib/*" -d "$dir.tmp/classes" "$here/OpenSearchNode.java" \
    || die "compiling e2e/opensearch/OpenSearchNode.java failed"
  cat > "$dir.tmp/opensearch-node" <<SCRIPT
#!/usr/bin/env bash
# Starts one OpenSearch $version node: opensearch-node HOME HTTP_PORT TRANSPORT_PORT
exec java -Xms256m -Xmx512m -XX:+UseSerialGC -Dlog4j2.disable.jmx=true \\
  -cp "$dir/classes:$dir/lib/*" OpenSearchNode "\$@"
SCRIPT
  chmod +x "$dir.tmp/opensearch-node"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  say "built OpenSearch $version in $(( $(date +%s) - start ))s -> $run"
}

case "${1:-}" in
  path)
    [ -x "$run" ] || build
    printf '%s\n' "$run" ;;
  *) die "usage: $0 path" ;;
esac
