#!/bin/sh
# The edge cache, in one run, on loopback only:
#   - hit path: a warm `[[cache]]` of debsync serve beside nginx serving the same file (wrk);
#   - miss path: debsync's cache beside apt-cacher-ng, both cold, on the same workload:
#     FILES pool files of SIZE_KIB each fetched once by 8 parallel clients, then one cold file
#     of 16 MiB asked by 50 clients at the same moment (how many upstream GETs each made).
# The upstream is a synthetic signed archive (random bytes named .deb, a real Packages and
# InRelease signed with a throw-away gpg key) served by a private nginx with an access log.
#
#   bench/cache.sh [FILES] [SIZE_KIB] [DURATION_SECS]      (defaults: 200 512 5)
#   (DEBSYNC_BIN=path overrides the binary, e.g. a debug build for a dry run)
#
# Needs: nginx, wrk, apt-cacher-ng, gpg, curl, python3 (apt-get install nginx wrk
# apt-cacher-ng gnupg curl), a release build (built if missing). apt-cacher-ng runs in the
# foreground with a private config (CacheDir, LogDir, port) under a temp dir; its system
# service is not used. Nothing but 127.0.0.1 is contacted.
set -eu

files=${1:-200}
size_kib=${2:-512}
duration=${3:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
target=${CARGO_TARGET_DIR:-$here/target}
bin=${DEBSYNC_BIN:-$target/release/debsync}
if [ ! -x "$bin" ]; then
    (cd "$here" && cargo build --release --quiet)
fi
acng=/usr/sbin/apt-cacher-ng
for tool in nginx wrk gpg curl python3 $acng; do
    command -v $tool >/dev/null || { echo "$tool not found (apt-get install nginx wrk apt-cacher-ng gnupg curl)" >&2; exit 1; }
done

work=$(mktemp -d)
chmod 755 "$work"
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building a signed archive of $files x $size_kib KiB in $work ..." >&2
up=$work/upstream
python3 - "$up" "$files" "$size_kib" <<'PY'
import hashlib, os, sys
root, n, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
stanzas = []
def add(name, size):
    rel = f"pool/main/{name[0]}/{name}/{name}_1.0_amd64.deb"
    os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
    data = os.urandom(size)
    open(os.path.join(root, rel), "wb").write(data)
    stanzas.append(f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\nFilename: {rel}\n"
                   f"Size: {size}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")
for i in range(n):
    add(f"pkg{i:05}", kib * 1024)
add("bigone", 16 << 20)
d = os.path.join(root, "dists/stable/main/binary-amd64")
os.makedirs(d, exist_ok=True)
packages = "\n".join(stanzas).encode()
open(os.path.join(d, "Packages"), "wb").write(packages)
h = hashlib.sha256(packages).hexdigest()
release = ("Origin: bench\nLabel: bench\nSuite: stable\nCodename: stable\n"
           "Date: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures: amd64\nComponents: main\n"
           f"SHA256:\n {h} {len(packages)} main/binary-amd64/Packages\n")
open(os.path.join(root, "dists/stable/Release"), "w").write(release)
PY
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "debsync bench <bench@invalid>" ed25519 sign never
gpg --batch --quiet --export > "$work/keyring.gpg"
gpg --batch --quiet --yes --clearsign -o "$up/dists/stable/InRelease" "$up/dists/stable/Release"
chmod -R a+rX "$up"

nginx_start "$work/nginx" "$up" "$(free_port)" auto "access_log $work/nginx/access.log;" || exit 1
pids="$pids $NGINX_PID"
upstream=$NGINX_URL

# debsync serve with one [[cache]] of the upstream.
cat > "$work/mirror.toml" <<EOF
root = "$work/root"
[[cache]]
name = "edge"
upstream = "$upstream/"
keyring = "$work/keyring.gpg"
EOF
RUST_LOG=warn "$bin" serve --config "$work/mirror.toml" --listen 127.0.0.1:0 > "$work/debsync.out" 2> "$work/debsync.err" &
pids="$pids $!"

# apt-cacher-ng in the foreground, everything under $work; forwarding only to the upstream port.
acng_port=$(free_port)
mkdir -p "$work/acng/cache" "$work/acng/log"
cp -r /etc/apt-cacher-ng "$work/acng/conf"
"$acng" -c "$work/acng/conf" ForeGround=1 Port="$acng_port" BindAddress=127.0.0.1 \
    SocketPath="$work/acng/socket" CacheDir="$work/acng/cache" LogDir="$work/acng/log" \
    AllowUserPorts="${upstream##*:}" > "$work/acng/out.log" 2>&1 &
pids="$pids $!"

i=0
until grep -q '^listening on ' "$work/debsync.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        cat "$work/debsync.err" >&2 || true
        echo "debsync serve did not start" >&2
        exit 1
    fi
    sleep 0.1
done
# apt-cacher-ng resolves its bind address through its own DNS client (libevent's, from
# /etc/resolv.conf); where that has no working name server it cannot listen at all.
acng_ok=no
for i in $(seq 50); do
    if curl -s -o /dev/null "http://127.0.0.1:$acng_port/acng-report.html"; then
        acng_ok=yes
        break
    fi
    sleep 0.1
done
[ $acng_ok = yes ] || echo "note: apt-cacher-ng did not answer on 127.0.0.1:$acng_port: $(head -c 300 "$work/acng/out.log"); its rows are skipped" >&2
edge=$(sed -n 's/^listening on //p' "$work/debsync.out")/edge

# A client's `apt-get update` through debsync (the cache learns the pool from Packages).
curl -sf -o /dev/null "$edge/dists/stable/InRelease"
curl -sf -o /dev/null "$edge/dists/stable/main/binary-amd64/Packages"

paths=$(cd "$up" && find pool -name 'pkg*.deb' | sort)
upstream_gets() { grep -c "GET /$1 " "$work/nginx/access.log" || true; }

miss_run() { # name "command with {}" -> seconds to fetch every path once, 8 in parallel
    start=$(date +%s.%N)
    echo "$paths" | xargs -P 8 -I{} sh -c "$2" || { echo "$1: a fetch failed" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
mb=$(echo "$files * $size_kib / 1024" | bc -l)
printf 'miss path: %s files x %s KiB (%.0f MiB), 8 parallel clients, cold caches, %s cores, load %s\n' \
    "$files" "$size_kib" "$mb" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
t_d=$(miss_run debsync "curl -sf -o /dev/null $edge/{}")
printf '  %-14s %6.2f s  %7.1f MiB/s\n' debsync "$t_d" "$(echo "$mb / $t_d" | bc -l)"
if [ $acng_ok = yes ]; then
    t_a=$(miss_run acng "curl -sf -o /dev/null -x http://127.0.0.1:$acng_port $upstream/{}")
    printf '  %-14s %6.2f s  %7.1f MiB/s\n' apt-cacher-ng "$t_a" "$(echo "$mb / $t_a" | bc -l)"
fi
first=$(echo "$paths" | head -1)
printf '  upstream GETs for %s: %s (one per cache)\n' "$first" "$(upstream_gets "$first")"

big=pool/main/b/bigone/bigone_1.0_amd64.deb
coalesce() { # fetcher -> seconds for 50 simultaneous clients of one cold 16 MiB file
    start=$(date +%s.%N)
    seq 50 | xargs -P 50 -I{} sh -c "$1" || { echo "a fetch failed" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
before=$(upstream_gets $big)
c_d=$(coalesce "curl -sf -o /dev/null $edge/$big")
mid=$(upstream_gets $big)
printf '50 clients at once, one cold 16 MiB file:\n'
printf '  %-14s %6.2f s, %s upstream GET(s)\n' debsync "$c_d" "$((mid - before))"
if [ $acng_ok = yes ]; then
    c_a=$(coalesce "curl -sf -o /dev/null -x http://127.0.0.1:$acng_port $upstream/$big")
    after=$(upstream_gets $big)
    printf '  %-14s %6.2f s, %s upstream GET(s)\n' apt-cacher-ng "$c_a" "$((after - mid))"
fi

rps() { # url -> "req/s transfer/s"
    wrk -t2 -c32 -d"${duration}s" "$1" | awk '
        /^Requests\/sec:/ { r = $2 }
        /^Transfer\/sec:/ { t = $2 }
        /Non-2xx/ { bad = 1 }
        END { printf "%s (%s)%s", r, t, (bad ? " non-2xx!" : "") }'
}
printf 'hit path: wrk -t2 -c32 -d%ss, warm cache vs nginx serving the same file\n' "$duration"
printf '  %-28s %24s %24s\n' target "debsync cache req/s" "nginx req/s"
printf '  %-28s %24s %24s\n' "$size_kib KiB .deb" "$(rps "$edge/$first")" "$(rps "$upstream/$first")"
printf '  %-28s %24s %24s\n' "InRelease (TTL-fresh)" "$(rps "$edge/dists/stable/InRelease")" \
    "$(rps "$upstream/dists/stable/InRelease")"
