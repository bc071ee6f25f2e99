#!/usr/bin/env bash
# sqlgit pruning benchmark (issue 5).
#
# Usage: benches/prune.sh [big|flat|all] [options]
#
#   big   a repository of --snapshots (default 55) snapshots of the benchmark database
#         (/tmp/sb/bench-2000000.db, ~280 MB, if present; else one built with the sqlite3 CLI),
#         a ~0.1% change between snapshots; then `sqlgit prune --keep 10`: time, peak RSS,
#         repository size before and after, and the steady-state cost (one more snapshot, prune 1)
#   flat  --small-snapshots (default 300) snapshots of a smaller database (200k rows, ~28 MB)
#         with `--keep 12` (1h at 5-minute snapshots): the repository size every 25 snapshots
#         must stay flat (the database keeps its size: rows appended, as many old ones deleted)
#   all   both (default)
#
# Options:
#   --db FILE            the big database (default /tmp/sb/bench-2000000.db if it exists)
#   --rows N             rows of the database built when there is none (default 400000)
#   --snapshots N        snapshots in `big` mode (default 55)
#   --small-snapshots N  snapshots in `flat` mode (default 300)
#   --workdir DIR        where the run files go (default: a temporary directory, deleted at the
#                        end unless --keep)
#   --keep               keep the run files
#   --no-build           use the existing target/release/sqlgit instead of `cargo build --release`
#
# Sizes are apparent sizes (du -sb: the sum of file sizes); MB = 10^6 bytes. Wall time and peak
# RSS come from GNU time (/usr/bin/time -f '%e %M').
# Needs: sqlite3, git, GNU time (/usr/bin/time; `apt-get install time`), awk, du, cargo.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql

mode=all big_db='' rows=400000 snapshots=55 small_snapshots=300 workdir='' keep=0 build=1

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "prune bench: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

while (($#)); do
  case $1 in
    big | flat | all) mode=$1 ;;
    --db) big_db=${2:?--db needs a file}; shift ;;
    --rows) rows=${2:?--rows needs a number}; shift ;;
    --snapshots) snapshots=${2:?--snapshots needs a number}; shift ;;
    --small-snapshots) small_snapshots=${2:?--small-snapshots needs a number}; shift ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ $rows =~ ^[0-9]+$ && $rows -ge 10000 ]] || die "--rows must be a number >= 10000"
[[ $snapshots =~ ^[0-9]+$ && $snapshots -ge 12 ]] || die "--snapshots must be a number >= 12"
[[ $small_snapshots =~ ^[0-9]+$ && $small_snapshots -ge 25 ]] || die "--small-snapshots must be >= 25"

for tool in sqlite3 git awk du; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"

# Hermetic git: no user or system config.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

# ---------------------------------------------------------------- work directory
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-prune-bench.XXXXXX")
  temp_workdir=1
else
  mkdir -p "$workdir"
  workdir=$(cd "$workdir" && pwd)
  temp_workdir=0
fi
run=$workdir/prune-run
rm -rf "$run"
mkdir -p "$run"

cleanup() {
  if ((keep)); then
    echo "run files kept in $run" >&2
  elif ((temp_workdir)); then
    rm -rf "$workdir"
  else
    rm -rf "$run"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- helpers
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; } # calc EXPR [DECIMALS]
mib() { calc "$1 / 1024" 1; }                          # KiB -> MiB
mb() { calc "$1 / 1000000" 2; }                        # bytes -> MB
size_of() { du -sb "$1" | awk '{ print $1 }'; }
packs_of() { find "$1/objects/pack" -name '*.pack' | wc -l; }
loose_of() { find "$1/objects" -path '*/objects/[0-9a-f][0-9a-f]/*' -type f | wc -l; }
commits() { git -C "$1" rev-list --count main; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

# timed OUT CMD...: runs CMD (stdout to OUT); sets T_WALL (s) and T_RSS (KiB). SQLGIT_NOW as set.
timed() {
  local out=$1
  shift
  if ! /usr/bin/time -f '%e %M' -o "$run/time.txt" "$@" >"$out" 2>"$run/stderr.txt"; then
    echo "prune bench: command failed: $*" >&2
    tail -n 20 "$run/stderr.txt" >&2
    cat "$run/time.txt" >&2
    exit 1
  fi
  read -r T_WALL T_RSS < <(tail -n 1 "$run/time.txt")
}

# sampled OUT CMD...: like timed, and also samples /proc/PID/status every ~5 ms to split the
# peak RSS into anonymous memory (heap) and file-backed pages (the mmapped packs, reclaimable);
# sets S_ANON and S_FILE (KiB, the largest values seen).
sampled() {
  local out=$1 tpid pid a f line
  shift
  /usr/bin/time -f '%e %M' -o "$run/time.txt" "$@" >"$out" 2>"$run/stderr.txt" &
  tpid=$!
  S_ANON=0 S_FILE=0 pid=''
  while kill -0 "$tpid" 2>/dev/null; do
    [[ -n $pid ]] || pid=$(pgrep -P "$tpid" | head -n 1 || true)
    if [[ -n $pid ]]; then
      a=0 f=0
      while read -r line; do
        case $line in
          RssAnon:*) a=${line//[!0-9]/} ;;
          RssFile:*) f=${line//[!0-9]/} ;;
        esac
      done <"/proc/$pid/status" 2>/dev/null || true
      ((a > S_ANON)) && S_ANON=$a
      ((f > S_FILE)) && S_FILE=$f
    fi
    sleep 0.005
  done
  if ! wait "$tpid"; then
    echo "prune bench: command failed: $*" >&2
    tail -n 20 "$run/stderr.txt" >&2
    exit 1
  fi
  read -r T_WALL T_RSS < <(tail -n 1 "$run/time.txt")
}

# ---------------------------------------------------------------- sqlgit binary
bin=${CARGO_TARGET_DIR:-target}
[[ $bin == /* ]] || bin=$root/$bin
bin=$bin/release/sqlgit
if ((build)); then
  say "cargo build --release"
  (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed (--no-build uses the existing binary)"
fi
[[ -x $bin ]] || die "$bin not found (build it with cargo build --release)"
"$bin" prune --help >/dev/null 2>&1 || die "$bin has no prune command"
echo "sqlgit: $bin; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $(git --version)"

# build_db FILE ROWS: the benchmark schema and rows (benches/sql), with the sqlite3 CLI.
build_db() {
  local file=$1 n=$2
  rm -f "$file.tmp"
  {
    echo 'PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;'
    cat "$sqldir/schema.sql"
    echo 'BEGIN;'
    cat "$sqldir/rows.sql"
    echo 'COMMIT;'
    cat "$sqldir/indexes.sql"
  } | sqlite3 -bail \
    -cmd ".parameter set @events $((n * 60 / 100))" \
    -cmd ".parameter set @items $((n * 25 / 100))" \
    -cmd ".parameter set @kv $((n - n * 60 / 100 - n * 25 / 100))" \
    "$file.tmp" >/dev/null
  mv "$file.tmp" "$file"
}

# snap DB REPO NOW [ARGS...]: one snapshot at SQLGIT_NOW=NOW, timed.
snap() {
  local db=$1 repo=$2 now=$3
  shift 3
  SQLGIT_NOW=$now timed "$run/out.txt" "$bin" snapshot "$db" --repo "$repo" "$@"
}

T0=1767225600 # 2026-01-01T00:00:00Z; snapshots 5 minutes apart

# ---------------------------------------------------------------- big: prune time and memory
bench_big() {
  local src=$big_db
  if [[ -z $src && -f /tmp/sb/bench-2000000.db ]]; then src=/tmp/sb/bench-2000000.db; fi
  if [[ -z $src ]]; then
    src=$workdir/prune-bench-$rows.db
    if [[ ! -f $src ]]; then
      say "no /tmp/sb/bench-2000000.db: building a $rows-row database with the sqlite3 CLI"
      build_db "$src" "$rows"
    fi
  fi
  [[ -f $src ]] || die "database $src not found"
  local dir=$run/big db repo
  db=$dir/bench.db repo=$dir/repo
  mkdir -p "$dir"
  cp "$src" "$db"
  echo
  echo "## big: $snapshots snapshots of $src ($(mb "$(size_of "$db")") MB), then sqlgit prune --keep 10"
  local appended=2000 r snap_t=() snap_rss=()
  for ((r = 1; r <= snapshots; r++)); do
    if ((r > 1)); then
      # The ~0.1% change: scattered updates and deletes, ~2,000 rows appended (copies of existing
      # rows; at 1.2 M events, 1 in 600 of them).
      sqlite3 -bail "$db" >/dev/null <<SQL
BEGIN;
UPDATE events SET ts = ts + 1 WHERE id % 4001 = $r;
DELETE FROM items WHERE rowid % 5003 = $r;
INSERT INTO events(ts, user_id, kind, amount, score, note, payload)
  SELECT ts + 1, user_id, kind, amount, score, note, payload FROM events
   WHERE id % 600 = $r LIMIT $appended;
COMMIT;
SQL
    fi
    snap "$db" "$repo" $((T0 + 300 * r))
    snap_t+=("$T_WALL") snap_rss+=("$T_RSS")
    if ((r == 1 || r % 10 == 0 || r == snapshots)); then
      echo "snapshot $r: $T_WALL s, peak RSS $(mib "$T_RSS") MiB, repository $(mb "$(size_of "$repo")") MB," \
        "$(packs_of "$repo") packs"
    fi
  done
  local before_size before_packs before_loose
  before_size=$(size_of "$repo") before_packs=$(packs_of "$repo") before_loose=$(loose_of "$repo")
  echo "before pruning: $(commits "$repo") commits, $(mb "$before_size") MB," \
    "$before_packs packs, $before_loose loose objects"

  SQLGIT_NOW=$((T0 + 300 * snapshots)) sampled "$run/out.txt" "$bin" prune --repo "$repo" --keep 10
  local p_t=$T_WALL p_rss=$T_RSS p_anon=$S_ANON p_file=$S_FILE after_size
  after_size=$(size_of "$repo")
  echo "sqlgit prune --keep 10: $p_t s, peak RSS $(mib "$p_rss") MiB (sampled: anonymous" \
    "$(mib "$p_anon") MiB, file-backed $(mib "$p_file") MiB)"
  echo "  $(tr '\n' ' ' <"$run/out.txt")"
  echo "after pruning: $(commits "$repo") commits, $(mb "$after_size") MB," \
    "$(packs_of "$repo") packs, $(loose_of "$repo") loose objects"
  git -C "$repo" fsck --strict --no-dangling --no-progress >"$run/fsck.txt" 2>&1 || {
    cat "$run/fsck.txt" >&2
    die "git fsck failed after pruning"
  }
  echo "git fsck --strict: clean"

  # Steady state: one more snapshot (which now prunes one, with the remembered --keep 10).
  sqlite3 -bail "$db" "UPDATE events SET ts = ts + 1 WHERE id % 4001 = 4000;" >/dev/null
  SQLGIT_NOW=$((T0 + 300 * (snapshots + 1))) sampled "$run/out.txt" "$bin" snapshot "$db" --repo "$repo"
  echo "steady state: snapshot + prune of 1: $T_WALL s, peak RSS $(mib "$T_RSS") MiB" \
    "(sampled: anonymous $(mib "$S_ANON") MiB, file-backed $(mib "$S_FILE") MiB)," \
    "repository $(mb "$(size_of "$repo")") MB, $(commits "$repo") commits, $(packs_of "$repo") packs"
  local sum=0 max_rss=0 x
  for x in "${snap_t[@]:1}"; do sum=$(calc "$sum + $x"); done
  for x in "${snap_rss[@]}"; do ((x > max_rss)) && max_rss=$x; done
  echo "reference: first snapshot ${snap_t[0]} s; incremental snapshots $(calc "$sum / (${#snap_t[@]} - 1)" 2) s" \
    "mean; snapshot peak RSS $(mib "$max_rss") MiB"
  echo "summary: prune $p_t s, peak RSS $(mib "$p_rss") MiB; repository $(mb "$before_size") MB" \
    "($before_packs packs, $snapshots commits) -> $(mb "$after_size") MB (10 commits)" \
    "-> anonymous memory <= 64 MiB: $(verdict "$p_anon <= 65536"); peak RSS incl. mapped packs <= 64 MiB:" \
    "$(verdict "$p_rss <= 65536")"
}

# ---------------------------------------------------------------- flat: disk use over time
bench_flat() {
  local dir=$run/flat db repo n=200000
  db=$dir/small.db repo=$dir/repo
  mkdir -p "$dir"
  echo
  echo "## flat: $small_snapshots snapshots of a $n-row database with --keep 12 (1h at 5-minute snapshots)"
  say "building the $n-row database"
  build_db "$db" "$n"
  echo "database: $(mb "$(size_of "$db")") MB"
  printf '%9s %10s %9s %8s %6s %12s %13s\n' snapshot "repo (MB)" "db (MB)" commits packs "loose objs" "snapshot (s)"
  local r sizes=() marks=()
  for ((r = 1; r <= small_snapshots; r++)); do
    if ((r > 1)); then
      # ~0.1%: scattered updates and deletes, 200 rows appended and the 200 oldest events
      # deleted, so that the database keeps its size and the repository can stay flat.
      sqlite3 -bail "$db" >/dev/null <<SQL
BEGIN;
UPDATE events SET ts = ts + 1 WHERE id % 4001 = $((r % 4001));
DELETE FROM items WHERE rowid % 5003 = $((r % 5003));
INSERT INTO events(ts, user_id, kind, amount, score, note, payload)
  SELECT ts + 1, user_id, kind, amount, score, note, payload FROM events
   WHERE id % 600 = $((r % 600)) LIMIT 200;
DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 200);
COMMIT;
SQL
    fi
    snap "$db" "$repo" $((T0 + 300 * r)) --keep 12
    if ((r == 1 || r % 25 == 0)); then
      local s
      s=$(size_of "$repo")
      sizes+=("$s") marks+=("$r")
      printf '%9s %10s %9s %8s %6s %12s %13s\n' "$r" "$(mb "$s")" "$(mb "$(size_of "$db")")" \
        "$(commits "$repo")" "$(packs_of "$repo")" "$(loose_of "$repo")" "$T_WALL"
    fi
  done
  git -C "$repo" fsck --strict --no-dangling --no-progress >"$run/fsck.txt" 2>&1 || {
    cat "$run/fsck.txt" >&2
    die "git fsck failed"
  }
  # Flat: from snapshot 25 on (history full), no size is more than 1.5x the one at 25.
  local base=${sizes[1]} max=0 s
  for s in "${sizes[@]:1}"; do ((s > max)) && max=$s; done
  echo "size at snapshot ${marks[1]}: $(mb "$base") MB; max after: $(mb "$max") MB;" \
    "at ${marks[-1]}: $(mb "${sizes[-1]}") MB (ratio $(calc "${sizes[-1]} / $base" 2))" \
    "-> flat (max <= 1.5x the size at 25): $(verdict "$max <= 1.5 * $base")"
}

case $mode in
  big) bench_big ;;
  flat) bench_flat ;;
  all) bench_big && bench_flat ;;
esac
