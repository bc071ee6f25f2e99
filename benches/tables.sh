#!/usr/bin/env bash
# sqlgit with many small tables (a schema of thousands of tables, as multi-tenant apps make).
#
# Usage: benches/tables.sh [--tables N] [--runs N] [--no-build]
#
# Builds a database of N tables (default 5000) of two rows each, then times, side by side in one
# run (median of --runs, default 3): `sqlite3 .dump` and `sqlgit dump` to /dev/null, the first
# `sqlgit snapshot`, an unchanged one, one after a one-row change, and `sqlgit cat | sqlite3`
# against `sqlite3 < .dump`. Ratios are against `sqlgit dump`.
# Needs: sqlite3, git, GNU time (/usr/bin/time), awk, python3 (to write the schema), cargo.
set -euo pipefail
export LC_ALL=C GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=benches/lib.sh
source "$here/lib.sh"

tables=5000 runs=3 build=1
while (($#)); do
  case $1 in
    --tables) tables=${2:?--tables needs a number}; shift ;;
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "tables bench: unknown argument: $1" >&2; exit 1 ;;
  esac
  shift
done
bin=$(sqlgit_bin "$root" "$build")
work=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-tables-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$tables" >"$work/schema.sql" <<'PY'
import sys
print("BEGIN;")
for i in range(int(sys.argv[1])):
    print(f"CREATE TABLE t{i}(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t{i} VALUES (1, 'a{i}'), (2, 'b');")
print("COMMIT;")
PY
db=$work/db.sqlite
sqlite3 "$db" <"$work/schema.sql"

# seconds CMD...: wall seconds of CMD (output to /dev/null).
seconds() {
  /usr/bin/time -f '%e' -o "$work/t" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/t"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
declare -A t
for ((i = 0; i < runs; i++)); do
  t[sqlite3_dump]+=" $(seconds sqlite3 "$db" .dump)"
  t[dump]+=" $(seconds "$bin" dump "$db")"
  rm -rf "$work/r" "$work/restored.db"
  t[first]+=" $(seconds "$bin" snapshot "$db" --repo "$work/r" -q)"
  t[unchanged]+=" $(seconds "$bin" snapshot "$db" --repo "$work/r" -q)"
  sqlite3 "$db" "UPDATE t$((tables / 2)) SET v = v || '$i' WHERE id = 1;"
  t[one_row]+=" $(seconds "$bin" snapshot "$db" --repo "$work/r" -q)"
  t[cat_restore]+=" $(seconds sh -c "'$bin' cat --repo '$work/r' | sqlite3 '$work/restored.db'")"
  rm -f "$work/cli.db"
  t[cli_restore]+=" $(seconds sh -c "sqlite3 '$db' .dump | sqlite3 '$work/cli.db'")"
done
base=$(median ${t[dump]})
echo "# $tables tables, median of $runs runs (seconds; ratio to sqlgit dump)"
for k in sqlite3_dump dump first unchanged one_row cat_restore cli_restore; do
  m=$(median ${t[$k]})
  awk -v k="$k" -v m="$m" -v b="$base" 'BEGIN { printf "%-14s %7.3f  %6.2fx\n", k, m, m / b }'
done
