#!/usr/bin/env bash
# sqlgit time travel beyond local history (issue 16): what reaching back costs.
#
# Usage: benches/history.sh [options]
#
# Builds --snapshots (default 200) snapshots of the benchmark database, changing --changed
# (default 20) scattered rows of `events` per snapshot, and one followed row (events, in the
# middle of the table) every 10th snapshot; pushes them to a history remote (a local bare
# repository, read through git's upload-pack as any server is); prunes locally to 5. Then times:
#
#   history-first   `sqlgit history events KEY` over all snapshots: fetches the history remote
#                   into the cache (REPO/sqlgit-cache) first; seconds and bytes fetched
#   history-cached  the same again (the cache answers, nothing fetched)
#   history-clone   the same on an unpruned bare clone of the remote (no cache involved)
#   diff-cached     `sqlgit diff HEAD~150 HEAD~149` through the cache
#   log-all         `sqlgit log --all`
#
# Options:
#   --rows N        rows of the benchmark database (default 200000, ~28 MB; 2000000 is ~280 MB)
#   --snapshots N   snapshots (default 200)
#   --changed N     scattered rows changed per snapshot (default 20)
#   --workdir DIR   where the run files go (default: a temporary directory, deleted at the end
#                   unless --keep)
#   --keep          keep the run files
#   --no-build      use the existing target/release/sqlgit instead of `cargo build --release`
#
# Sizes are apparent sizes (du -sb); MB = 10^6 bytes. Wall times from GNU time
# (/usr/bin/time -f '%e %M': seconds, peak RSS in KiB).
# Needs: sqlite3, git, GNU time, awk, du, cargo.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql
# shellcheck source=benches/lib.sh
source "$here/lib.sh"

rows=200000 snapshots=200 changed=20 workdir='' keep=0 build=1

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "history bench: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

while (($#)); do
  case $1 in
    --rows) rows=${2:?--rows needs a number}; shift ;;
    --snapshots) snapshots=${2:?--snapshots needs a number}; shift ;;
    --changed) changed=${2:?--changed needs a number}; shift ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[[ $rows =~ ^[0-9]+$ && $rows -ge 1000 ]] || die "--rows must be a number >= 1000"
[[ $snapshots =~ ^[0-9]+$ && $snapshots -ge 160 ]] || die "--snapshots must be >= 160"
[[ $changed =~ ^[1-9][0-9]*$ ]] || die "--changed must be a positive number"
[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install time)"

sqlgit=$(sqlgit_bin "$root" "$build")
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d /tmp/sqlgit-history-bench.XXXXXX)
  ((keep)) || trap 'rm -rf "$workdir"' EXIT
fi
mkdir -p "$workdir"
cache_db=/tmp/sb/bench-$rows.db
mkdir -p /tmp/sb
bench_db "$cache_db" "$rows" "$sqldir"
db=$workdir/app.db repo=$workdir/app.sqlgit remote=$workdir/hist.git
rm -rf "$db" "$repo" "$remote" "$workdir/full.git"
cp "$cache_db" "$db"
git init -q --bare -b main "$remote"

key=$((n_events / 2))
step=$((n_events / changed))
now=1700000000
# change ROUND: $changed rows spread over events (another set each round); the followed row
# every 10th round.
change() {
  local r=$1
  sqlite3 -bail "$db" "UPDATE events SET amount = (abs(random()) % 10000000) / 100.0
    WHERE id % $step = $((r % step)) AND id <> $key;
    $( ((r % 10 == 0)) && echo "UPDATE events SET score = $r, note = 'round $r' WHERE id = $key;")"
}

say "$snapshots snapshots of $rows rows ($changed rows changed each, events id $key every 10th)"
start=$(date +%s)
for ((r = 1; r <= snapshots; r++)); do
  change "$r"
  now=$((now + 300))
  SQLGIT_NOW=$now "$sqlgit" snapshot "$db" --repo "$repo" -q
done
say "snapshots took $(($(date +%s) - start)) s; pushing to the history remote"
"$sqlgit" push --repo "$repo" --history-remote "$remote" -q
"$sqlgit" prune --repo "$repo" --keep 5 -q
git clone -q --bare "$remote" "$workdir/full.git"

timed() { # timed NAME CMD...: "NAME seconds peak-RSS-KiB", output to $workdir/NAME.out
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$workdir/$name.time" "$@" >"$workdir/$name.out" 2>"$workdir/$name.err" ||
    [[ $? -eq 1 ]] || { cat "$workdir/$name.err" >&2; die "$name failed"; }
  read -r secs rss < <(tail -1 "$workdir/$name.time")
  printf '%-16s %8s s  %8s KiB peak RSS\n' "$name" "$secs" "$rss"
}

echo
echo "# $rows rows ($(du -sb "$db" | cut -f1) bytes), $snapshots snapshots, $changed rows changed each; $(git --version)"
timed history-first "$sqlgit" history events "$key" --repo "$repo"
fetched=$(du -sb "$repo/sqlgit-cache/objects" | cut -f1)
timed history-cached "$sqlgit" history events "$key" --repo "$repo"
timed history-clone "$sqlgit" history events "$key" --repo "$workdir/full.git"
timed diff-cached "$sqlgit" diff HEAD~150 HEAD~149 --repo "$repo" --summary
timed log-all "$sqlgit" log --all --repo "$repo"
cmp -s "$workdir/history-cached.out" "$workdir/history-clone.out" || die "history differs from the clone's"
echo
echo "events of id $key: $(($(wc -l <"$workdir/history-cached.out") - 1)) ($(head -1 "$workdir/history-cached.out"))"
echo "fetched into the cache:   $fetched bytes ($(cat "$workdir/history-first.err"))"
echo "history remote:           $(du -sb "$remote" | cut -f1) bytes"
echo "local repository (keep 5): $(du -sb --exclude=sqlgit-cache "$repo" | cut -f1) bytes"
