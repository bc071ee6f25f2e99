#!/usr/bin/env bash
# sqlgit restore benchmark (issue 14): four ways to a new database, side by side in one run.
#
# Usage: benches/restore.sh [options]
#
#   1. sqlite3 new.db < (sqlite3 old.db .dump)    the baseline
#   2. sqlgit cat --repo R | sqlite3 new.db        the documented plain-sqlite3 restore
#   3. sqlgit restore --repo R --to new.db         sqlgit's own restore
#   4. sqlite3 old.db "VACUUM INTO 'new.db'"       the floor: a page copy, no SQL
#
# Options:
#   --rows N       rows in the benchmark database (default 2000000, i.e. ~280 MB); built with
#                  benches/sql/*.sql exactly as benches/bench.sh builds it, and cached there
#   --workdir DIR  where the database (cached per row count) and the run files go;
#                  default: a temporary directory, deleted at the end
#   --runs N       timed runs of each command, interleaved (default 1)
#   --bin PATH     the sqlgit binary to measure (default target/release/sqlgit)
#   --no-build     do not run `cargo build --release` first
#   --verify       also check that every restored database dumps back (`sqlgit dump`) to the
#                  same bytes as the source
#
# Wall time by the shell (ms resolution); peak RSS by /usr/bin/time (%M: for a pipeline, the
# largest process of it). Ratios are to the baseline's median.
#
# Last runs (2 M rows / 280 MB, 2 shared cores, medians of 5): baseline 10.25 / 10.30 / 10.35 s;
# cat | sqlite3 7.67 / 7.70 / 7.70 s (0.748x, 0.748x, 0.743x); restore --to 2.03 / 2.07 /
# 2.02 s (0.198x, 0.201x, 0.195x; single runs 1.91-2.54 s), peak RSS 43.8 MiB; VACUUM INTO
# 0.72 / 0.74 / 0.75 s. restore --to runs
# on three threads (reading and inflating the snapshot, decoding, SQLite inserting 16 rows a
# step) that keep both cores busy (about 3.4-3.7 s of CPU for 1.9-2.0 s), then checks the new
# file table by table on two connections (~0.2 s) while the disk finishes writing it.
# Needs: sqlite3, git, GNU time (/usr/bin/time), awk, sha1sum, cargo.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql

rows=2000000 workdir='' runs=1 bin='' build=1 verify=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "restore-bench: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

while (($#)); do
  case $1 in
    --rows) rows=${2:?--rows needs a number}; shift ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --bin) bin=${2:?--bin needs a path}; shift ;;
    --no-build) build=0 ;;
    --verify) verify=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ $rows =~ ^[0-9]+$ && $rows -ge 1000 ]] || die "--rows must be a number >= 1000"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
for tool in sqlite3 git awk sha1sum; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-restore-bench.XXXXXX")
  temp_workdir=1
else
  mkdir -p "$workdir"
  workdir=$(cd "$workdir" && pwd)
  temp_workdir=0
fi
run=$workdir/restore-run
rm -rf "$run"
mkdir -p "$run"
cleanup() { if ((temp_workdir)); then rm -rf "$workdir"; else rm -rf "$run"; fi; }
trap cleanup EXIT

# timed CMD...: sets T_WALL (seconds) and T_RSS (KiB).
timed() {
  local t0 t1
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%e %M' -o "$run/time.txt" "$@" >/dev/null 2>"$run/stderr.txt"; then
    echo "restore-bench: command failed: $*" >&2
    tail -n 20 "$run/stderr.txt" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  T_RSS=$(awk 'END { print $2 }' "$run/time.txt")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }
mib() { calc "$1 / 1024" 1; }

# ---------------------------------------------------------------- sqlgit binary
source "$here/lib.sh"
if [[ -z $bin ]]; then
  bin=$(sqlgit_bin "$root" "$build") || die "no sqlgit binary"
fi
[[ -x $bin ]] || die "$bin not found"

# ---------------------------------------------------------------- benchmark database
# The same database as benches/bench.sh (same SQL, same split, same cache file name).
db=$workdir/bench-$rows.db
bench_db "$db" "$rows" "$sqldir"
echo "database: $db ($(du -b "$db" | awk '{ printf "%.1f MB", $1 / 1e6 }'), $rows rows)"
echo "sqlite3 $(sqlite3 --version | cut -d' ' -f1); sqlgit: $bin"

repo=$run/repo
say "snapshot into $repo"
"$bin" snapshot "$db" --repo "$repo" >/dev/null
cat "$db" >/dev/null # page cache

new=$run/new.db
fresh() { rm -f "$new" "$new-journal" "$new-wal" "$new-shm"; }
baseline() { sqlite3 "$1" .dump | sqlite3 -bail "$2"; }
via_cat() { "$1" cat --repo "$2" | sqlite3 -bail "$3"; }
export -f baseline via_cat

names=(baseline cat restore vacuum)
labels=("sqlite3 new.db < (sqlite3 .dump)" "sqlgit cat | sqlite3 new.db" "sqlgit restore --to new.db"
  "sqlite3 VACUUM INTO new.db")
declare -A T M
check() {
  local what=$1
  if ((verify)); then
    [[ $("$bin" dump "$new" | sha1sum) == "$want" ]] || die "$what: the restored database dumps differently"
  fi
}
((verify)) && want=$("$bin" dump "$db" | sha1sum)
for ((r = 1; r <= runs; r++)); do
  for name in "${names[@]}"; do
    fresh
    case $name in
      baseline) timed bash -o pipefail -c 'baseline "$@"' _ "$db" "$new" ;;
      cat) timed bash -o pipefail -c 'via_cat "$@"' _ "$bin" "$repo" "$new" ;;
      restore) timed "$bin" restore --repo "$repo" --to "$new" ;;
      vacuum) timed sqlite3 "$db" "VACUUM INTO '$new'" ;;
    esac
    T[$name]+="$T_WALL " M[$name]+="$T_RSS "
    check "$name"
    echo "run $r: $name ${T_WALL} s, peak RSS $(mib "$T_RSS") MiB"
  done
done
fresh

echo
base=$(median ${T[baseline]})
vac=$(median ${T[vacuum]})
printf '%-36s %10s %10s %10s %14s\n' "" "median (s)" "/ baseline" "/ VACUUM" "peak RSS (MiB)"
for i in "${!names[@]}"; do
  name=${names[$i]}
  t=$(median ${T[$name]})
  printf '%-36s %10s %10s %10s %14s\n' "${labels[$i]}" "$t" "$(calc "$t / $base")" \
    "$(calc "$t / $vac")" "$(mib "$(maxof ${M[$name]})")"
done
echo
echo "targets: restore <= 0.2x baseline and <= 2x VACUUM INTO; cat | sqlite3 <= 0.5x baseline;" \
  "peak RSS <= 64 MiB"
((verify)) && echo "verify: every restored database dumps back to the source's bytes"
exit 0
