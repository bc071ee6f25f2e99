# Shared by the benchmark scripts (sourced, not run): the sqlgit binary and the benchmark
# database, built the same way everywhere from benches/sql/*.sql.

# sqlgit_bin ROOT BUILD: the release binary's path on stdout; builds it first when BUILD is 1.
sqlgit_bin() {
  local root=$1 build=$2 bin=${CARGO_TARGET_DIR:-target}
  [[ $bin == /* ]] || bin=$root/$bin
  bin=$bin/release/sqlgit
  if ((build)); then
    echo "==> cargo build --release" >&2
    (cd "$root" && cargo build --release --quiet) || { echo "cargo build --release failed" >&2; return 1; }
  fi
  [[ -x $bin ]] || { echo "$bin not found (build it with cargo build --release)" >&2; return 1; }
  echo "$bin"
}

# bench_split ROWS: sets n_events, n_items, n_kv (60% events, 25% items, 15% kv).
bench_split() {
  n_events=$(($1 * 60 / 100)) n_items=$(($1 * 25 / 100))
  n_kv=$(($1 - n_events - n_items))
}

# bench_db DB ROWS SQLDIR: build the benchmark database at DB unless it exists (a cache).
bench_db() {
  local db=$1 rows=$2 sqldir=$3
  bench_split "$rows"
  if [[ -f $db ]]; then
    echo "==> using cached database $db" >&2
    return 0
  fi
  echo "==> building the benchmark database ($rows rows) in $db" >&2
  rm -f "$db.tmp"
  {
    echo 'PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;'
    cat "$sqldir/schema.sql"
    echo 'BEGIN;'
    cat "$sqldir/rows.sql"
    echo 'COMMIT;'
    cat "$sqldir/indexes.sql"
  } | sqlite3 -bail \
    -cmd ".parameter set @events $n_events" \
    -cmd ".parameter set @items $n_items" \
    -cmd ".parameter set @kv $n_kv" \
    "$db.tmp" >/dev/null
  mv "$db.tmp" "$db"
}
