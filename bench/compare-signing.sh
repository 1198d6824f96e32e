#!/usr/bin/env bash
# The earlier signed format against the attestation, in one run: builds the
# passport benchmark of a base revision (default: main) from a temporary
# copy and of this tree, then runs the two binaries back to back on the same
# machine and prints the signed bytes and the evaluate, evaluate+sign and
# verify times of both.
#   bash bench/compare-signing.sh [BASE_REVISION]
# Wants a quiet machine: the load average is printed before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-main}
work=$(mktemp -d /tmp/rp-bench-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/base"
git archive "$base" | tar -x -C "$work/base"

# Builds the passport benchmark in a directory and copies its binary out
# (both builds may share CARGO_TARGET_DIR).
build() {
  local dir=$1 out=$2 exe
  exe=$(cd "$dir" && cargo bench --locked --bench passport --no-run --message-format=json 2>/dev/null \
    | grep '"executable":"[^"]' | grep '"name":"passport"' | tail -n1 | sed 's/.*"executable":"\([^"]*\)".*/\1/')
  [ -x "$exe" ] || { echo "building the benchmark in $dir failed" >&2; exit 1; }
  cp "$exe" "$out"
}
build "$work/base" "$work/bench-base"
build . "$work/bench-new"

filter='passport/(evaluate_20_rules|evaluate_and_sign_20_rules|verify_20_rule_passport)$'
for which in base new; do
  label=$([ "$which" = base ] && echo "before ($base)" || echo "after (this tree)")
  echo "== $label, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$work/bench-$which" --bench --noplot "$filter" 2>&1 \
    | grep -E "^passport/|time:|signed (content|payload)" || true
done
