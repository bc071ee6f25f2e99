#!/usr/bin/env bash
# sqlgit torture run (issue 8): the CI test `torture_short` (tests/it/torture/short.rs), for longer.
#
# Usage: benches/torture.sh [SECONDS] [--seed N] [--log FILE]
#
#   SECONDS   how long the torture lasts (default 600); the checks afterwards take a few minutes
#             more (every commit on the history remotes is restored and checked)
#   --seed N  the seed of the kills, outages and transfers (default 2026)
#   --log F   also write the whole output to F (default: torture-<date>.log in the temp dir)
#
# What runs, all at once: two bank databases (WAL and rollback journal) with a sqlite3 writer each
# committing transfers non-stop; a snapshot of each into its own repository about once a second
# (`--keep 5`, history remote on a git daemon, latest remote on smart HTTP); about a third of the
# runs SIGKILLed after 0-800 ms; the git daemon stopped for 1-4 s every 2-8 s. Then: git fsck
# locally and on both remotes, every history commit restored and checked (sum of balances, ledger),
# the latest remote equal to the head, every printed commit on the history remote, bounded size,
# private files. The counts are printed at the end (lines starting with `torture`).
#
# Needs what the integration tests need: cargo, sqlite3, git (with git-daemon), python3, tar.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

secs=600
seed=2026
log=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --log) log="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *[!0-9]*|"") echo "torture.sh: unknown argument: $1" >&2; exit 2 ;;
    *) secs="$1"; shift ;;
  esac
done
if [ -z "$log" ]; then
  log="${TMPDIR:-/tmp}/sqlgit-torture-$(date +%Y%m%d-%H%M%S).log"
fi

echo "torture.sh: ${secs} s, seed ${seed}; log: ${log}" >&2
cargo build --release --tests --quiet
start=$(date +%s)
set +e
SQLGIT_TORTURE_SECS="$secs" SQLGIT_TORTURE_SEED="$seed" \
  cargo test --release --quiet --test it torture_short -- --nocapture --test-threads 1 2>&1 \
  | tee "$log"
status=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo >&2
echo "torture.sh: exit ${status} after $((end - start)) s (torture ${secs} s + checks); summary:" >&2
grep -E '^torture' "$log" >&2 || true
exit "$status"
