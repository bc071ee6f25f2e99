#!/usr/bin/env bash
# Repository growth per incremental snapshot, snapshot format 1 vs format 2, side by side on the
# same database and the same change (issue 14: bounded trees), and the shape of format 2's trees.
#
# Usage: benches/format-growth.sh [--rows N] [--changed N] [--workdir DIR] [--no-build]
#
#   --rows N       rows in the benchmark database (default 16000000, ~2.2 GB; built with the same
#                  SQL as benches/bench.sh and cached in the work directory)
#   --changed N    scattered rows of the largest table updated between the snapshots (default 3000)
#   --workdir DIR  where the database and the two repositories go (default: a temporary directory,
#                  deleted at the end)
#
# Two repositories snapshot the database (one with SQLGIT_SNAPSHOT_FORMAT=1), then N scattered rows
# of `events` change and both snapshot again; the figure is each repository's growth in bytes.
# The tree shape is read from format 2's second snapshot with plain git: the depth of the largest
# table's row folders and the largest number of entries in any of its trees.
set -euo pipefail
export LC_ALL=C GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql
rows=16000000 changed=3000 workdir='' build=1
while (($#)); do
  case $1 in
    --rows) rows=${2:?}; shift ;;
    --changed) changed=${2:?}; shift ;;
    --workdir) workdir=${2:?}; shift ;;
    --no-build) build=0 ;;
    *) echo "format-growth: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-growth.XXXXXX")
  trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
source "$here/lib.sh"
bin=$(sqlgit_bin "$root" "$build")

db=$workdir/bench-$rows.db
bench_db "$db" "$rows" "$sqldir"
work=$workdir/work.db
cp "$db" "$work"
size() { du -sb "$1" | cut -f1; }
events=$(sqlite3 "$work" 'SELECT max(id) FROM events')
step=$((events / changed))

for f in 1 2; do
  rm -rf "$workdir/f$f.sqlgit"
  echo "==> first snapshot, format $f" >&2
  SQLGIT_SNAPSHOT_FORMAT=$f SQLGIT_NOW=1800000000 "$bin" snapshot "$work" --repo "$workdir/f$f.sqlgit" -q
done
before1=$(size "$workdir/f1.sqlgit") before2=$(size "$workdir/f2.sqlgit")
sqlite3 "$work" "UPDATE events SET note = note || ' (changed)' WHERE id % $step = 7"
for f in 1 2; do
  echo "==> incremental snapshot, format $f" >&2
  SQLGIT_SNAPSHOT_FORMAT=$f SQLGIT_NOW=1800000600 "$bin" snapshot "$work" --repo "$workdir/f$f.sqlgit" -q
done
grow1=$(($(size "$workdir/f1.sqlgit") - before1)) grow2=$(($(size "$workdir/f2.sqlgit") - before2))

# Tree shape of the largest table in format 2 (and format 1, for comparison).
shape() {
  local repo=$1 rows_tree
  rows_tree=$(git -C "$repo" rev-parse "main:work.db/1-tables/events/1-rows")
  git -C "$repo" ls-tree -r -t "$rows_tree" | awk -F'\t' '
    { n = split($2, p, "/"); if (n > depth) depth = n
      if ($1 ~ / tree /) trees++; else files++
      parent = (n > 1) ? substr($2, 1, length($2) - length(p[n]) - 1) : "."
      count[parent]++ }
    END { for (k in count) if (count[k] > widest) widest = count[k]
          printf "%d chunk files, %d folders, depth %d, widest tree %d entries (1-rows itself: %d)\n",
                 files, trees, depth, widest, count["."] }'
}
echo
echo "database: $(size "$db") bytes, $rows rows; $(sqlite3 "$work" "SELECT count(*) FROM events WHERE id % $step = 7") scattered rows of events changed"
printf '%-8s %14s %14s\n' format "first (bytes)" "growth (bytes)"
printf '%-8s %14s %14s\n' 1 "$before1" "$grow1"
printf '%-8s %14s %14s\n' 2 "$before2" "$grow2"
echo "format 1 tree of events: $(shape "$workdir/f1.sqlgit")"
echo "format 2 tree of events: $(shape "$workdir/f2.sqlgit")"
