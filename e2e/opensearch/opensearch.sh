#!/usr/bin/env bash
# Builds a single-node OpenSearch server for the tests from Maven Central
# (the org.opensearch:opensearch server and its netty4 HTTP transport, at the
# versions pinned in e2e/opensearch/pom.xml) into the project cache, once per
# version, and prints the path of the script that starts it:
#   bash e2e/opensearch/opensearch.sh path
#   "$(bash e2e/opensearch/opensearch.sh path)" HOME HTTP_PORT TRANSPORT_PORT
# Needs a Java 17 JDK and Maven, as Debian packages them
# (openjdk-17-jdk-headless, maven: `bash hack/install-deps.sh java`); both are
# called by their Debian paths, never from PATH, and the launcher runs the
# java it was built with.
# Environment: RP_CACHE_DIR (default ~/.cache/release-passport); RP_JAVA_HOME
# (default /usr/lib/jvm/java-17-openjdk-amd64) and RP_MVN (default
# /usr/share/maven/bin/mvn) to use another JDK or Maven.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../hack/env.sh
. "$here/../../hack/env.sh"
say() { printf '[opensearch] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

version=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$here/pom.xml")
[ -n "$version" ] || die "no opensearch.version in e2e/opensearch/pom.xml"
# -r<N>: the recipe (launcher, JDK path) changed.
dir=$rp_cache/bin/opensearch-$version-r1
run=$dir/opensearch-node
java_home=${RP_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
mvn=${RP_MVN:-/usr/share/maven/bin/mvn}

build() {
  local start
  [ -x "$mvn" ] || die "Maven is needed at $mvn to fetch OpenSearch from Maven Central (bash hack/install-deps.sh java, or RP_MVN)"
  [ -x "$java_home/bin/javac" ] || die "a Java 17 JDK is needed at $java_home to compile the node launcher (bash hack/install-deps.sh java, or RP_JAVA_HOME)"
  mkdir -p "$rp_cache/bin"
  exec 8>"$rp_cache/bin/.build-opensearch.lock"
  flock 8
  [ -x "$run" ] && return 0
  start=$(date +%s)
  say "fetching OpenSearch $version from Maven Central into $dir (once per version)..."
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/classes"
  JAVA_HOME=$java_home "$mvn" -B -q -f "$here/pom.xml" -Dmaven.repo.local="$rp_cache/maven" \
    dependency:copy-dependencies -DoutputDirectory="$dir.tmp/lib" >&2 \
    || die "mvn dependency:copy-dependencies failed (e2e/opensearch/pom.xml)"
  "$java_home/bin/javac" -nowarn -cp "$dir.tmp/lib/*" -d "$dir.tmp/classes" "$here/OpenSearchNode.java" \
    || die "compiling e2e/opensearch/OpenSearchNode.java failed"
  cat > "$dir.tmp/opensearch-node" <<SCRIPT
#!/usr/bin/env bash
# Starts one OpenSearch $version node: opensearch-node HOME HTTP_PORT TRANSPORT_PORT
exec "$java_home/bin/java" -Xms256m -Xmx512m -XX:+UseSerialGC -Dlog4j2.disable.jmx=true \\
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
