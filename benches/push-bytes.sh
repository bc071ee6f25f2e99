#!/usr/bin/env bash
# Bytes sent per incremental push over smart HTTP: `--transport git` vs `--transport libgit2`
# (issue 13: the git transport sends thin packs, libgit2 does not).
#
# Usage: benches/push-bytes.sh [options]
#
#   --rows N       rows in the benchmark database (default 200000, ~28 MB; built with the same
#                  SQL as benches/bench.sh)
#   --rounds N     incremental snapshots after the first one (default 4)
#   --changed N    rows updated per round, scattered over the events table (default 3000)
#   --workdir DIR  where the files go; default: a temporary directory, deleted at the end
#   --keep         keep the work directory
#   --no-build     use the existing target/release/sqlgit instead of `cargo build --release`
#
# One lighttpd on 127.0.0.1 (no auth) runs `git http-backend` as CGI for four bare repositories:
# history and latest for each transport. Two sqlgit repositories snapshot the same database after
# each change, one per transport. The figure is what the server received: lighttpd's access log
# (%I: bytes in, request line and headers included, ~300 bytes) summed over the
# `POST …/git-receive-pack` requests of each push; a marker request between pushes splits the log.
# Needs: sqlite3, git (with git-http-backend), lighttpd (/usr/sbin/lighttpd), curl, awk.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
sqldir=$here/sql

rows=200000 rounds=4 changed=3000 workdir='' keep=0 build=1

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "push-bytes: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

while (($#)); do
  case $1 in
    --rows) rows=${2:?--rows needs a number}; shift ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --changed) changed=${2:?--changed needs a number}; shift ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ $rows =~ ^[0-9]+$ && $rows -ge 1000 ]] || die "--rows must be a number >= 1000"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[[ $changed =~ ^[1-9][0-9]*$ ]] || die "--changed must be a positive number"

lighttpd=/usr/sbin/lighttpd
for tool in sqlite3 git curl awk; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x $lighttpd ]] || die "$lighttpd not found: apt-get install lighttpd"
backend=$(git --exec-path)/git-http-backend
[[ -x $backend ]] || die "$backend not found"

# Hermetic git: no user or system config, fixed identity.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
unset SQLGIT_HTTPS_TOKEN SQLGIT_HTTPS_USER

if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/sqlgit-push-bytes.XXXXXX")
  temp_workdir=1
else
  mkdir -p "$workdir"
  workdir=$(cd "$workdir" && pwd)
  temp_workdir=0
fi
run=$workdir/run
rm -rf "$run"
mkdir -p "$run/srv"

server_pid=''
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if ((keep)); then
    echo "files kept in $run" >&2
  elif ((temp_workdir)); then
    rm -rf "$workdir"
  else
    rm -rf "$run"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- sqlgit binary
source "$here/lib.sh"
bin=$(sqlgit_bin "$root" "$build") || die "no sqlgit binary"

# ---------------------------------------------------------------- database (as bench.sh builds it)
db=$run/bench.db
bench_db "$db" "$rows" "$sqldir"
echo "database: $(du -b "$db" | awk '{ print $1 }') bytes, $rows rows;" \
  "$changed scattered rows of events updated per round; $(git --version); $("$lighttpd" -v)"

# change ROUND: update about $changed rows spread evenly over events (a different set each round).
step=$((n_events / changed))
((step >= 1)) || step=1
change() {
  sqlite3 -bail "$db" "UPDATE events SET amount = (abs(random()) % 10000000) / 100.0,
      note = printf('round %d: %s', $1, hex(randomblob(12)))
    WHERE id % $step = ($1 * 7919) % $step;" >/dev/null
}

# ---------------------------------------------------------------- the web server
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)))
cat >"$run/lighttpd.conf" <<EOF
server.modules = ( "mod_alias", "mod_setenv", "mod_cgi", "mod_accesslog" )
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$run/srv"
server.errorlog = "$run/error.log"
server.max-request-size = 0
accesslog.filename = "$run/access.log"
accesslog.format = "%m %U %>s %I"
alias.url = ( "/" => "$backend/" )
cgi.assign = ( "" => "" )
setenv.set-environment = (
  "GIT_PROJECT_ROOT" => "$run/srv", "GIT_HTTP_EXPORT_ALL" => "1",
  "GIT_CONFIG_GLOBAL" => "/dev/null", "GIT_CONFIG_NOSYSTEM" => "1",
  "GIT_CONFIG_COUNT" => "1", "GIT_CONFIG_KEY_0" => "http.receivepack", "GIT_CONFIG_VALUE_0" => "true"
)
EOF
for t in git libgit2; do
  for role in history latest; do
    git init -q --bare -b main "$run/srv/$t-$role.git"
  done
done
"$lighttpd" -D -f "$run/lighttpd.conf" 2>"$run/lighttpd.stderr" &
server_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$port/" || die "lighttpd did not start: $(cat "$run/lighttpd.stderr")"
mark() { curl -s -o /dev/null "http://127.0.0.1:$port/mark/$1"; }

# push ROUND TRANSPORT [VIA]: snapshot that transport's repository (both remotes), pushing with
# VIA (default: TRANSPORT).
push() {
  local t=$2 via=${3:-$2} url=http://127.0.0.1:$port
  mark "$1/$t"
  "$bin" snapshot "$db" --repo "$run/$t.sqlgit" --transport "$via" \
    --history-remote "$url/$t-history.git" --latest-remote "$url/$t-latest.git" \
    >"$run/out.txt" 2>&1 || { cat "$run/out.txt" >&2; die "sqlgit snapshot --transport $t failed"; }
}

# ---------------------------------------------------------------- the runs
say "first snapshot (the whole database), both transports"
# libgit2 fails to send a large first pack to lighttpd (seen at 280 MB: "error receiving data
# from socket: Broken pipe", where git sends it): its remotes are seeded through git; the
# incremental rounds, which are what is measured, use libgit2.
push 0 git
push 0 libgit2 git
for ((r = 1; r <= rounds; r++)); do
  say "round $r: $changed rows changed"
  change "$r"
  # Alternate which transport goes first.
  if ((r % 2)); then push "$r" git; push "$r" libgit2; else push "$r" libgit2; push "$r" git; fi
done
mark end
kill "$server_pid" # a graceful stop writes out the buffered access log
wait "$server_pid" 2>/dev/null || true
server_pid=''

# ---------------------------------------------------------------- the figures
# Sum %I of the receive-pack POSTs per (round, transport, role).
awk '
  $2 ~ /^\/mark\// { split($2, m, "/"); key = m[3] " " m[4]; next }
  $1 == "POST" && $2 ~ /git-receive-pack$/ && key != "" {
    role = ($2 ~ /-history\.git\//) ? "history" : "latest"
    bytes[key " " role] += $4
  }
  END { for (k in bytes) print k, bytes[k] }
' "$run/access.log" | sort -n >"$run/bytes.txt"
get() { awk -v k="$1 $2 $3" '$1 " " $2 " " $3 == k { print $4; f = 1 } END { if (!f) print 0 }' "$run/bytes.txt"; }

echo
echo "## bytes received by the server per push (receive-pack POSTs, headers included)"
printf '%-7s %14s %14s %14s %14s %8s\n' round "git history" "git latest" "libgit2 hist." "libgit2 latest" ratio
tg=0 tl=0
for ((r = 0; r <= rounds; r++)); do
  gh=$(get "$r" git history) gl=$(get "$r" git latest)
  lh=$(get "$r" libgit2 history) ll=$(get "$r" libgit2 latest)
  ratio=$(awk -v a=$((lh + ll)) -v b=$((gh + gl)) 'BEGIN { printf (b ? "%.1f" : "-"), a / b }')
  label=$r
  ((r)) || label="first"
  printf '%-7s %14d %14d %14d %14d %7sx\n' "$label" "$gh" "$gl" "$lh" "$ll" "$ratio"
  if ((r)); then tg=$((tg + gh + gl)) tl=$((tl + lh + ll)); fi
done
echo "incremental total: git $tg bytes, libgit2 $tl bytes;" \
  "libgit2 / git = $(awk -v a=$tl -v b=$tg 'BEGIN { printf (b ? "%.2f" : "-"), a / b }')"
# Sanity: both transports left the same tree on their remotes.
for role in history latest; do
  a=$(git -C "$run/srv/git-$role.git" rev-parse 'main^{tree}')
  b=$(git -C "$run/srv/libgit2-$role.git" rev-parse 'main^{tree}')
  [[ $a == "$b" ]] || die "the $role remotes of the two transports differ ($a vs $b)"
done
echo "both transports' remotes hold the same tree (checked)"
