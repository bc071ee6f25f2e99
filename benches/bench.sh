#!/usr/bin/env bash
# sqlgit benchmark (issues 2 and 3).
#
# Usage: benches/bench.sh [dump|snapshot|all|scale] [options]
#
#   dump      `sqlite3 DB .dump` vs `sqlgit dump DB`, both to /dev/null, interleaved runs
#   snapshot  first + incremental `sqlgit snapshot` vs `sqlgit dump` and the naive script
#             (sqlite3 .dump > dump.sql; git add; git commit), with a ~0.1% change per round
#   all       both (default)
#   scale     `all --no-naive` at 2,000,000 rows (~280 MB) and at 16,000,000 rows (~2.26 GB),
#             one after the other (the issue-15 figures at both sizes); other options pass on
#
# Options:
#   --rows N       rows in the benchmark database (default 2000000, i.e. ~280 MB)
#   --workdir DIR  where the database (cached per row count) and the run files go;
#                  default: a temporary directory, deleted at the end unless --keep
#   --keep         keep the run files (repositories, work copy) at the end
#   --runs N       timed runs of each dump command in `dump` mode (default 3)
#   --rounds N     incremental snapshot rounds in `snapshot` mode (default 5; from 17 rounds on,
#                  runs merge packs, storing old versions as deltas: growth is then amortized)
#   --no-build     use the existing target/release/sqlgit instead of `cargo build --release`
#   --verify       in `dump` mode, also restore sqlgit's dump with sqlite3 and compare row counts
#   --no-naive     in `snapshot` mode, skip the naive script (minutes per round at 2 GB)
#   --scattered N  in `snapshot` mode, each round updates N scattered rows (60% events, 25% items,
#                  15% kv, at random) instead of the ~0.1% change (which grows with the database)
#
# Wall time is measured by the shell (ms resolution), peak RSS by /usr/bin/time (%M).
# Needs: sqlite3, git, GNU time (/usr/bin/time; `apt-get install time`), awk, du, cargo.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql

mode=all rows=2000000 workdir='' keep=0 runs=3 rounds=5 build=1 verify=0 run_naive=1 scattered=0
all_args=("$@")

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

while (($#)); do
  case $1 in
    dump | snapshot | all | scale) mode=$1 ;;
    --rows) rows=${2:?--rows needs a number}; shift ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift ;;
    --keep) keep=1 ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --no-build) build=0 ;;
    --verify) verify=1 ;;
    --no-naive) run_naive=0 ;;
    --scattered) scattered=${2:?--scattered needs a number}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ $rows =~ ^[0-9]+$ && $rows -ge 1000 ]] || die "--rows must be a number >= 1000"
if [[ $mode == scale ]]; then
  rest=()
  for a in "${all_args[@]}"; do [[ $a == scale ]] || rest+=("$a"); done
  for n in 2000000 16000000; do
    echo "# scale: $n rows"
    "${BASH_SOURCE[0]}" all --no-naive "${rest[@]}" --rows "$n" || exit 1
    rest+=(--no-build)
  done
  exit 0
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"

for tool in sqlite3 git awk du; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: apt-get install time"

# Hermetic git: no user or system config, fixed identity and dates.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'

# ---------------------------------------------------------------- work directory
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-bench.XXXXXX")
  temp_workdir=1
else
  mkdir -p "$workdir"
  workdir=$(cd "$workdir" && pwd)
  temp_workdir=0
fi
run=$workdir/run # this run's files; the cached database stays beside it
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
# timed OUT CMD...: runs CMD with stdout to OUT; sets T_WALL (seconds) and T_RSS (KiB).
timed() {
  local out=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%e %M' -o "$run/time.txt" "$@" >"$out" 2>"$run/stderr.txt"; then
    echo "bench: command failed: $*" >&2
    tail -n 20 "$run/stderr.txt" >&2
    grep -i 'status\|signal' "$run/time.txt" >&2 || true
    exit 1
  fi
  t1=$EPOCHREALTIME
  T_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  T_RSS=$(awk 'END { print $2 }' "$run/time.txt")
}

# Statistics over the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.3f", s / NR }'; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; } # calc EXPR [DECIMALS]
mib() { calc "$1 / 1024" 1; }                          # KiB -> MiB
mb() { calc "$1 / 1000000" 2; }                        # bytes -> MB
size_of() { du -sb "$1" | awk '{ print $1 }'; }
# verdict VALUE OP LIMIT [TARGET]: PASS/FAIL against LIMIT, "target met" against TARGET.
verdict() {
  local v=$1 op=$2 limit=$3 target=${4:-}
  if awk "BEGIN { exit !($v $op $limit) }"; then
    if [[ -n $target ]] && awk "BEGIN { exit !($v $op $target) }"; then echo "PASS (target met)"; else echo PASS; fi
  else
    echo FAIL
  fi
}

# ---------------------------------------------------------------- sqlgit binary
source "$here/lib.sh"
bin=$(sqlgit_bin "$root" "$build") || die "no sqlgit binary"

# ---------------------------------------------------------------- benchmark database
db=$workdir/bench-$rows.db
t0=$EPOCHREALTIME
bench_db "$db" "$rows" "$sqldir"
say "ready in $(calc "$EPOCHREALTIME - $t0" 1) s"
db_bytes=$(size_of "$db")
echo "database: $db"
echo "database size: $db_bytes bytes ($(mb "$db_bytes") MB); rows: $n_events events," \
  "$n_items items (no INTEGER PRIMARY KEY), $n_kv kv (WITHOUT ROWID)"
echo "sqlite3 $(sqlite3 --version | cut -d' ' -f1), $(git --version), sqlgit: $bin"

# Load the file into the page cache so that no run pays for the first read.
warm() { cat "$1" >/dev/null; }

# ---------------------------------------------------------------- dump mode
bench_dump() {
  local r s_t=() s_m=() g_t=() g_m=() o_t=() s_bytes g_bytes
  echo
  echo "## dump: sqlite3 .dump vs sqlgit dump ($runs runs each, interleaved, output to /dev/null)"
  warm "$db"

  # Untimed sanity pass: both produce a dump of comparable size.
  s_bytes=$(sqlite3 "$db" .dump | wc -c)
  g_bytes=$("$bin" dump "$db" | wc -c)
  echo "dump size: sqlite3 $s_bytes bytes, sqlgit $g_bytes bytes"
  ((g_bytes * 2 > s_bytes)) || die "sqlgit dump is less than half the size of sqlite3's: not a full dump?"

  for ((r = 1; r <= runs; r++)); do
    if ((r % 2)); then
      timed /dev/null sqlite3 "$db" .dump && s_t+=("$T_WALL") s_m+=("$T_RSS")
      timed /dev/null "$bin" dump "$db" && g_t+=("$T_WALL") g_m+=("$T_RSS")
    else
      timed /dev/null "$bin" dump "$db" && g_t+=("$T_WALL") g_m+=("$T_RSS")
      timed /dev/null sqlite3 "$db" .dump && s_t+=("$T_WALL") s_m+=("$T_RSS")
    fi
    # Big tables on one core only (a snapshot's whole read is formatted on one).
    timed /dev/null env SQLGIT_ONE_CORE=1 "$bin" dump "$db" && o_t+=("$T_WALL")
    echo "run $r: sqlite3 ${s_t[-1]} s, sqlgit ${g_t[-1]} s, sqlgit on one core ${o_t[-1]} s"
  done

  local s_med g_med s_best g_best ratio rss
  s_med=$(median "${s_t[@]}") g_med=$(median "${g_t[@]}")
  s_best=$(best "${s_t[@]}") g_best=$(best "${g_t[@]}")
  ratio=$(calc "$s_med / $g_med" 2)
  rss=$(maxof "${g_m[@]}")
  echo
  printf '%-30s %10s %10s %14s\n' "" "best (s)" "median (s)" "peak RSS (MiB)"
  printf '%-30s %10s %10s %14s\n' "sqlite3 DB .dump > /dev/null" "$s_best" "$s_med" "$(mib "$(maxof "${s_m[@]}")")"
  printf '%-30s %10s %10s %14s\n' "sqlgit dump DB > /dev/null" "$g_best" "$g_med" "$(mib "$rss")"
  printf '%-30s %10s %10s\n' "  the same on one core" "$(best "${o_t[@]}")" "$(median "${o_t[@]}")"
  echo
  echo "ratio sqlite3/sqlgit (median): $ratio  (best: $(calc "$s_best / $g_best" 2))" \
    "-> $(verdict "$ratio" '>=' 1 2)  [limit >= 1, target >= 2]"
  echo "sqlgit dump / sqlite3 .dump (median): $(calc "$g_med / $s_med")" \
    "(one core: $(calc "$(median "${o_t[@]}") / $s_med"))  [issue 15: <= 0.4]"
  echo "sqlgit peak RSS: $(mib "$rss") MiB -> $(verdict "$rss" '<=' 65536)  [limit <= 64 MiB]"

  if ((verify)); then
    say "verify: restoring sqlgit's dump with sqlite3"
    rm -f "$run/restored.db"
    "$bin" dump "$db" | sqlite3 -bail "$run/restored.db" >/dev/null
    local t a b
    for t in events items kv; do
      a=$(sqlite3 "$db" "SELECT count(*) FROM $t") b=$(sqlite3 "$run/restored.db" "SELECT count(*) FROM $t")
      [[ $a == "$b" ]] || die "verify: $t has $a rows, restored $b"
    done
    echo "verify: restored database has the same row counts"
    rm -f "$run/restored.db"
  fi
}

# ---------------------------------------------------------------- snapshot mode
# apply_change ROUND: the ~0.1% change (scattered updates and deletes, appended rows).
apply_change() {
  if ((scattered)); then
    sqlite3 -bail "$work_db" >/dev/null <<SQL
BEGIN;
UPDATE events SET note = printf('scattered %d %s', $1, hex(randomblob(8)))
 WHERE id IN (SELECT abs(random()) % $n_events + 1 FROM events LIMIT $((scattered * 60 / 100)));
UPDATE items SET qty = qty + 1
 WHERE rowid IN (SELECT abs(random()) % $n_items + 1 FROM items LIMIT $((scattered * 25 / 100)));
UPDATE kv SET v = printf('scattered %d', $1)
 WHERE n IN (SELECT abs(random()) % $n_kv + 1 FROM kv LIMIT $((scattered * 15 / 100)));
COMMIT;
SQL
    return
  fi
  local a=$((rows / 1000)) # appended rows: 70% events, 20% items, 10% kv
  {
    echo 'BEGIN;'
    cat "$sqldir/change.sql" "$sqldir/rows.sql"
    echo 'COMMIT;'
  } | sqlite3 -bail \
    -cmd ".parameter set @round $1" \
    -cmd ".parameter set @events $((a * 70 / 100 + 1))" \
    -cmd ".parameter set @items $((a * 20 / 100 + 1))" \
    -cmd ".parameter set @kv $((a * 10 / 100 + 1))" \
    "$work_db" >/dev/null
}

# The naive script of issue 3, in its own plain git repository.
naive_snapshot() {
  sqlite3 "$1" .dump >"$2/dump.sql" && git -C "$2" add dump.sql && git -C "$2" commit -q -m x
}
export -f naive_snapshot

commits() { git -C "$repo" rev-list --count main 2>/dev/null || echo '?'; }
pack_count() { find "$repo/objects/pack" -name "*.pack" 2>/dev/null | wc -l; }

bench_snapshot() {
  echo
  local change="a ~0.1% change"
  ((scattered > 0)) && change="$scattered scattered rows updated"
  echo "## snapshot: sqlgit snapshot vs sqlgit dump vs the naive script ($rounds rounds of $change)"
  if ! "$bin" snapshot --help >/dev/null 2>&1; then
    echo "skipped: \`sqlgit snapshot --help\` fails (the snapshot command does not exist yet)"
    return 0
  fi
  local snap=$run/snapshot
  work_db=$snap/bench.db repo=$snap/repo
  local naive=$snap/naive
  mkdir -p "$snap" "$naive"
  cp "$db" "$work_db"
  git init -q -b main "$naive"
  warm "$work_db"

  local dump_t=() snap_t=() naive_t=() grow=() naive_grow=() rss_all=() r_dump=() r_naive=()
  local merged_rounds=() r_plain=() packs_before dump1_t=() r_dump1=()
  local before after nb na first_t first_rss first_size dump0 dump1_0 nochange_t c0 c1

  # Round 0: first snapshot into a fresh repository.
  timed /dev/null "$bin" dump "$work_db" && dump0=$T_WALL && rss_all+=("$T_RSS")
  # The dump formats big tables on two cores; the same on one core, as a snapshot reads.
  timed /dev/null env SQLGIT_ONE_CORE=1 "$bin" dump "$work_db" && dump1_0=$T_WALL
  timed "$run/out.txt" "$bin" snapshot "$work_db" --repo "$repo"
  first_t=$T_WALL first_rss=$T_RSS
  rss_all+=("$T_RSS")
  first_size=$(size_of "$repo")
  local naive0_t=0 naive0_size=0
  if ((run_naive)); then
    timed /dev/null bash -c 'naive_snapshot "$@"' _ "$work_db" "$naive"
    naive0_t=$T_WALL
    naive0_size=$(size_of "$naive/.git")
  fi
  echo "first snapshot: $first_t s (dump $dump0 s, on one core $dump1_0 s, naive $naive0_t s), peak RSS $(mib "$first_rss") MiB," \
    "repo $(mb "$first_size") MB (naive .git $(mb "$naive0_size") MB)"

  # Unchanged database: must make no commit.
  c0=$(commits)
  before=$(size_of "$repo")
  timed "$run/out.txt" "$bin" snapshot "$work_db" --repo "$repo"
  nochange_t=$T_WALL
  rss_all+=("$T_RSS")
  c1=$(commits)
  after=$(size_of "$repo")
  echo "unchanged database: $nochange_t s, commits $c0 -> $c1, repo growth $((after - before)) bytes" \
    "($(tr '\n' ' ' <"$run/out.txt" | sed 's/ *$//' | cut -c1-80))"

  echo
  printf '%5s %9s %12s %9s %11s %9s %13s\n' round "dump (s)" "snapshot (s)" "RSS (MiB)" "growth (MB)" \
    "naive (s)" "naive growth"
  local r
  for ((r = 1; r <= rounds; r++)); do
    apply_change "$r"
    timed /dev/null "$bin" dump "$work_db"
    dump_t+=("$T_WALL")
    rss_all+=("$T_RSS")
    timed /dev/null env SQLGIT_ONE_CORE=1 "$bin" dump "$work_db"
    dump1_t+=("$T_WALL")

    before=$(size_of "$repo")
    packs_before=$(pack_count)
    timed "$run/out.txt" "$bin" snapshot "$work_db" --repo "$repo"
    after=$(size_of "$repo")
    snap_t+=("$T_WALL")
    # A run that merged packs ends with fewer than one more than before.
    if (($(pack_count) <= packs_before)); then
      merged_rounds+=("$r")
    else
      r_plain+=("$(calc "$T_WALL / ${dump_t[-1]}")")
    fi
    rss_all+=("$T_RSS")
    snap_rss=$T_RSS
    grow+=("$((after - before))")

    if ((run_naive)); then
      nb=$(size_of "$naive/.git")
      timed /dev/null bash -c 'naive_snapshot "$@"' _ "$work_db" "$naive"
      na=$(size_of "$naive/.git")
      naive_t+=("$T_WALL")
      naive_grow+=("$((na - nb))")
    else
      naive_t+=(1) naive_grow+=(0)
    fi

    r_dump+=("$(calc "${snap_t[-1]} / ${dump_t[-1]}")")
    r_dump1+=("$(calc "${snap_t[-1]} / ${dump1_t[-1]}")")
    r_naive+=("$(calc "${snap_t[-1]} / ${naive_t[-1]}")")
    printf '%5s %9s %12s %9s %11s %9s %13s\n' "$r" "${dump_t[-1]}" "${snap_t[-1]}" "$(mib "$snap_rss")" \
      "$(mb "${grow[-1]}")" "${naive_t[-1]}" "$(mb "${naive_grow[-1]}") MB"
  done
  echo "commits in the sqlgit repository: $(commits) (expected $((rounds + 1)))"
  echo "rounds that merged packs (old versions stored as deltas): ${merged_rounds[*]:-none}" \
    "(a merge needs more than 16 packs: use --rounds 17 or more); repo $(mb "$(size_of "$repo")") MB"

  local m_rd x_rd m_rn x_rn m_g x_g first_ratio rss
  m_rd=$(mean "${r_dump[@]}") x_rd=$(maxof "${r_dump[@]}")
  m_rn=$(mean "${r_naive[@]}") x_rn=$(maxof "${r_naive[@]}")
  m_g=$(mean "${grow[@]}") x_g=$(maxof "${grow[@]}")
  first_ratio=$(calc "$first_t / $dump0")
  rss=$(maxof "${rss_all[@]}")

  echo
  echo "summary (${rounds} incremental rounds; mean / max; MB = 10^6 bytes)"
  printf '%-36s %-19s %-18s %s\n' metric "measured" "limit (target)" verdict
  printf '%-36s %-19s %-18s %s\n' "incremental snapshot / dump time" "$m_rd / $x_rd" "<= 1.3" \
    "$(verdict "$m_rd" '<=' 1.3)"
  if ((run_naive)); then
    printf '%-36s %-19s %-18s %s\n' "incremental snapshot / naive time" "$m_rn / $x_rn" "<= 0.333 (0.2)" \
      "$(verdict "$m_rn" '<=' 0.3334 0.2)"
  fi
  printf '%-36s %-19s %-18s %s\n' "repo growth per snapshot (MB)" "$(mb "$m_g") / $(mb "$x_g")" "<= 4 (2)" \
    "$(verdict "$m_g" '<=' 4000000 2000000)"
  printf '%-36s %-19s %-18s %s\n' "first snapshot / dump time" "$first_ratio" "<= 2 (1.5)" \
    "$(verdict "$first_ratio" '<=' 2 1.5)"
  local nochange_ratio
  nochange_ratio=$(calc "$nochange_t / $dump0")
  printf '%-36s %-19s %-18s %s\n' "unchanged snapshot / dump time" "$nochange_ratio" "<= 0.1 (0.05)" \
    "$(verdict "$nochange_ratio" '<=' 0.1 0.05)"
  printf '%-36s %-19s %-18s %s\n' "incremental snapshot / dump (issue 15)" "$m_rd / $x_rd" "<= 0.25 (0.1)" \
    "$(verdict "$m_rd" '<=' 0.25 0.1)"
  if ((${#merged_rounds[@]} > 0 && ${#r_plain[@]} > 0)); then
    local m_p x_p
    m_p=$(mean "${r_plain[@]}") x_p=$(maxof "${r_plain[@]}")
    printf '%-36s %-19s %-18s %s\n' "  the same, rounds without a merge" "$m_p / $x_p" "<= 0.25 (0.1)" \
      "$(verdict "$m_p" '<=' 0.25 0.1)"
  fi
  printf '%-36s %-19s\n' "against the dump on one core:" ""
  printf '%-36s %-19s\n' "  first snapshot / dump" "$(calc "$first_t / $dump1_0")"
  printf '%-36s %-19s\n' "  unchanged snapshot / dump" "$(calc "$nochange_t / $dump1_0")"
  printf '%-36s %-19s\n' "  incremental snapshot / dump" "$(mean "${r_dump1[@]}") / $(maxof "${r_dump1[@]}")"
  printf '%-36s %-19s %-18s %s\n' "sqlgit peak RSS (MiB, all runs)" "$(mib "$rss")" "<= 64" \
    "$(verdict "$rss" '<=' 65536)"
  echo "reference: dump $(mean "${dump_t[@]}") s (one core $(mean "${dump1_t[@]}") s), incremental snapshot $(mean "${snap_t[@]}") s," \
    "naive $(mean "${naive_t[@]}") s and +$(mb "$(mean "${naive_grow[@]}")") MB of .git per snapshot (means)"
}

case $mode in
  dump) bench_dump ;;
  snapshot) bench_snapshot ;;
  all) bench_dump && bench_snapshot ;;
esac
