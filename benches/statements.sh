#!/usr/bin/env bash
# How fast the sqlite3 CLI reads rows, by the shape of the INSERT statements (issue 14: why
# `sqlgit cat | sqlite3` cannot reach half of `sqlite3 .dump`'s restore time).
#
# Usage: benches/statements.sh [--rows N] [--workdir DIR] [--bin PATH]
#
# Takes the first N rows (default 300000) of the `events` table of the benchmark database
# (built by benches/bench.sh, cached in --workdir, default /tmp/benchwd), dumps them with sqlgit
# (format 2), regroups the rows into statements of 1, 10, 40, 200 and 1000 rows, and times
# `sqlite3 new.db < file` for each, side by side in one run. The benchmark database's text holds
# no line breaks, so one row is one line (the regrouping relies on it).
# Needs: sqlite3, awk, GNU time (/usr/bin/time).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
rows=300000 workdir=/tmp/benchwd bin=$root/target/release/sqlgit

while (($#)); do
  case $1 in
    --rows) rows=${2:?}; shift ;;
    --workdir) workdir=${2:?}; shift ;;
    --bin) bin=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "statements-bench: unknown argument: $1" >&2; exit 1 ;;
  esac
  shift
done
src=$workdir/bench-2000000.db
[[ -f $src ]] || { echo "statements-bench: no $src (run benches/bench.sh --workdir $workdir once)" >&2; exit 1; }
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT

sqlite3 "$src" "VACUUM INTO '$run/part.db'"
sqlite3 "$run/part.db" "DROP TABLE items; DROP TABLE kv; DELETE FROM events WHERE id > $rows; VACUUM;"
"$bin" dump "$run/part.db" -o "$run/f2.sql"

for per in 1 10 40 200 1000; do
  awk -v per="$per" '
    /^INSERT INTO .* VALUES$/ { head = $0; next }
    /^\(/ && head != "" {
      row = $0; last = (row ~ /\);$/); sub(/[,;]$/, "", row)
      if (n == 0) print head
      n++
      printf "%s%s\n", row, ((n == per || last) ? ";" : ",")
      if (n == per || last) n = 0
      if (last) head = ""
      next
    }
    { print }
  ' "$run/f2.sql" >"$run/v$per.sql"
done

echo "rows per statement | sqlite3 new.db < file (s)"
for round in 1 2; do
  for per in 1 10 40 200 1000; do
    rm -f "$run/new.db"
    t=$( { /usr/bin/time -f %e sqlite3 -bail "$run/new.db" <"$run/v$per.sql" >/dev/null; } 2>&1 )
    echo "round $round: $per | $t"
  done
done
