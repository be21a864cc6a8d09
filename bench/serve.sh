#!/bin/sh
# debsync serve vs nginx (autoindex on), side by side over the same tree, measured with wrk:
# a 1 MiB .deb, a 2 KiB index file, and a 10,000-entry pool directory listing (twice: a settled
# directory, which debsync may answer from its listing cache, and one containing a symlink,
# which it never caches, so every request re-reads 10,000 entries like nginx does).
#
#   bench/serve.sh [DURATION_SECS] [CONNECTIONS]      (defaults: 5 32)
#   SERVE_LOG=1 bench/serve.sh ...    both servers write a combined-format access log file
#   SERVE_ROUNDS=N bench/serve.sh ... rounds per row, alternating the servers (default 3)
#
# Needs: wrk and nginx (apt-get install wrk nginx), a release build (built if missing).
# Both servers log nothing per request (nginx access_log off; debsync RUST_LOG=warn) and use
# all cores (nginx worker_processes auto; tokio's default runtime). Only 127.0.0.1 is used.
set -eu

duration=${1:-5}
conns=${2:-32}
rounds=${SERVE_ROUNDS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
target=${CARGO_TARGET_DIR:-$here/target}
bin=$target/release/debsync
if [ ! -x "$bin" ]; then
    (cd "$here" && cargo build --release --quiet)
fi
for tool in wrk nginx python3; do
    command -v $tool >/dev/null || { echo "$tool not found (apt-get install wrk nginx)" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work"
debsync_pid=
nginx_pid=
cleanup() {
    [ -n "$debsync_pid" ] && kill "$debsync_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# A closed output pipe (`| head`) must not leave both servers running.
trap 'exit 1' INT TERM HUP PIPE

echo "building the tree in $work ..." >&2
tree=$work/tree
mkdir -p "$tree/pool/main/h/hello" "$tree/dists/stable" "$tree/pool/main/l/big" "$tree/pool/main/l/big-linked"
head -c 1048576 /dev/urandom > "$tree/pool/main/h/hello/hello_2.10-3_amd64.deb"
head -c 2048 /dev/urandom | base64 | head -c 2048 > "$tree/dists/stable/Release"
python3 - "$tree/pool/main/l" <<'PY'
import os, sys
base = sys.argv[1]
for d in ("big", "big-linked"):
    for i in range(10000):
        open(os.path.join(base, d, f"libbig{i:05}_1.0-{i}_amd64.deb"), "wb").close()
os.symlink("libbig00000_1.0-0_amd64.deb", os.path.join(base, "big-linked", "link.deb"))
PY
touch -d '1 hour ago' "$tree/pool/main/l/big" "$tree/pool/main/l/big-linked"
chmod -R a+rX "$tree"

# debsync
log_args=""
nginx_log=""
if [ "${SERVE_LOG:-0}" = 1 ]; then
    log_args="--access-log $work/debsync-access.log"
    nginx_log="access_log $work/nginx-access.log combined;"
fi
# shellcheck disable=SC2086 # log_args is empty or two words
RUST_LOG=warn "$bin" serve --root "$tree" --listen 127.0.0.1:0 $log_args > "$work/debsync.out" 2> "$work/debsync.err" &
debsync_pid=$!

# nginx, foreground, everything under $work.
nginx_start "$work/nginx" "$tree" "$(free_port)" auto "autoindex on; $nginx_log" || exit 1
nginx_pid=$NGINX_PID

i=0
while ! grep -q '^listening on ' "$work/debsync.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        cat "$work/debsync.err" "$work/nginx/error.log" >&2 || true
        echo "servers did not start" >&2
        exit 1
    fi
    sleep 0.1
done
debsync_base=$(sed -n 's/^listening on //p' "$work/debsync.out")
nginx_base=$NGINX_URL

# Sanity: both serve the same bytes.
for p in /pool/main/h/hello/hello_2.10-3_amd64.deb /dists/stable/Release; do
    a=$(curl -s "$debsync_base$p" | sha256sum)
    b=$(curl -s "$nginx_base$p" | sha256sum)
    [ "$a" = "$b" ] || { echo "servers differ on $p" >&2; exit 1; }
done

rps() { # url -> "req/s"
    wrk -t2 -c"$conns" -d"${duration}s" "$1" | awk '
        /^Requests\/sec:/ { r = $2 }
        /Non-2xx/ { bad = 1 }
        END { printf "%s%s\n", r, (bad ? " (non-2xx!)" : "") }'
}
# "median min max" of the numbers on stdin
spread() { sort -g | awk '{ a[NR] = $1 } END { printf "%.0f %.0f %.0f", a[int((NR + 1) / 2)], a[1], a[NR] }'; }

# Each row alternates the two servers $rounds times and compares medians: this machine's speed
# drifts within seconds, and one run of each, one after the other, measured the drift.
printf '%s\n' "wrk -t2 -c$conns -d${duration}s x $rounds rounds alternating, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), access log files: ${SERVE_LOG:-0}"
printf '%-34s %26s %26s %7s\n' "target (median req/s, min-max)" "debsync" "nginx" "ratio"
for row in \
    "1 MiB .deb|/pool/main/h/hello/hello_2.10-3_amd64.deb" \
    "2 KiB file|/dists/stable/Release" \
    "10,000-entry listing (settled)|/pool/main/l/big/" \
    "10,000-entry listing (uncached)|/pool/main/l/big-linked/"; do
    name=${row%%|*}
    path=${row#*|}
    : > "$work/debsync.rps"
    : > "$work/nginx.rps"
    for _ in $(seq "$rounds"); do
        rps "$debsync_base$path" >> "$work/debsync.rps"
        rps "$nginx_base$path" >> "$work/nginx.rps"
    done
    if grep -q non-2xx "$work/debsync.rps" "$work/nginx.rps"; then
        note=" (non-2xx answers!)"
    else
        note=""
    fi
    set -- $(spread < "$work/debsync.rps") $(spread < "$work/nginx.rps")
    printf '%-34s %26s %26s %7s%s\n' "$name" "$1 ($2-$3)" "$4 ($5-$6)" \
        "$(awk -v d="$1" -v n="$4" 'BEGIN { printf "%.2fx", d / n }')" "$note"
done
# Single-request latency of the big listing (best of 5, as a client sees it).
for who in debsync nginx; do
    base=$(eval echo \$${who}_base)
    for path in /pool/main/l/big/ /pool/main/l/big-linked/; do
        best=$(for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "$base$path"; done | sort -n | head -1)
        printf '%-8s %-26s best of 5: %s s\n' "$who" "$path" "$best"
    done
done
