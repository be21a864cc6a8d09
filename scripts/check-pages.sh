#!/usr/bin/env bash
# Checks what people see of a synced mirror, and renders it in headless Chromium so it can be
# looked at without a browser: the front page `/`, the mirror's page `/<mirror>/` and pool
# listings, each in light and dark, at desktop width and 400 px wide.
#
#   scripts/check-pages.sh [OUTDIR]        (default: target/screenshots)
#
# 1. builds a small signed upstream (packages made with dpkg-deb, example/make-upstream.sh
#    signs it; no network), serves it with `debsync serve --root`;
# 2. `debsync sync` mirrors it; a second mirror with credentials in its upstream is never
#    synced (its card must say so and show no credentials);
# 3. `debsync serve --config` the mirror: curls `/`, `/<mirror>/`, `?sort=`, `/healthz`,
#    `/metrics` and the access log for what they must contain;
# 4. screenshots: OUTDIR/{front,mirror,pool,hello}-{desktop,phone}-{light,dark}.png.
#
# Needs: chromium, apt-ftparchive (apt-utils), gpg, dpkg-deb, curl (installed with apt-get when
# missing), a built debsync (debug or release; built with cargo if neither exists). Uses only
# 127.0.0.1.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/target/screenshots}
target=${CARGO_TARGET_DIR:-$here/target}
bin=$target/release/debsync
[ -x "$bin" ] || bin=$target/debug/debsync
if [ ! -x "$bin" ]; then
  (cd "$here" && cargo build --quiet)
  bin=$target/debug/debsync
fi
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need chromium chromium
need apt-ftparchive apt-utils
need curl curl

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() { echo "check-pages: FAIL: $*" >&2; exit 1; }
ok() { echo "check-pages: ok: $*"; }

# Starts `debsync ARGS --listen 127.0.0.1:0` in the background; sets $addr.
start() {
  local log=$work/serve-$#-$RANDOM.log
  "$bin" "$@" --listen 127.0.0.1:0 >"$log" 2>&1 &
  pids+=($!)
  addr=
  for _ in $(seq 100); do
    addr=$(grep -m1 -o 'http://[0-9.:]*' "$log" 2>/dev/null) && break
    sleep 0.1
  done
  [ -n "$addr" ] || fail "debsync $* did not start: $(cat "$log")"
}

# 1. Upstream: hello in three versions (version order: 1.0, 9.0, 10.0), sl, cowsay.
up=$work/up
mkdir -p "$up/debs"
deb() { # name version
  local root=$work/pkg/$1-$2
  mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$1"
  head -c $((4000 + ${#1} * 5000 + ${2%%.*} * 700)) /dev/urandom >"$root/usr/share/doc/$1/blob"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: %s for the page check\n' \
    "$1" "$2" "$1" >"$root/DEBIAN/control"
  dpkg-deb --root-owner-group --build "$root" "$up/debs/${1}_${2}_all.deb" >/dev/null
}
for v in 1.0 9.0 10.0; do deb hello "$v"; done
deb sl 5.02
deb cowsay 3.03
bash "$here/example/make-upstream.sh" "$up" hello sl cowsay >"$work/make-upstream.log" 2>&1 \
  || { tail -n 5 "$work/make-upstream.log" >&2; fail "make-upstream.sh"; }
start serve --root "$up"
upstream=$addr

# 2. Sync.
cat >"$work/mirror.toml" <<TOML
root = "mirror"
[serve]
access_log = "access.log"
[[mirror]]
name = "example"
upstream = "$upstream/"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "up/keyring.gpg"
[[mirror]]
name = "vendor"
upstream = "https://user:s3cret@vendor.example/apt"
suites = ["jammy", "jammy-updates"]
components = ["main", "restricted"]
architectures = ["amd64", "arm64"]
keyring = "up/keyring.gpg"
TOML
"$bin" sync --config "$work/mirror.toml" --mirror example >"$work/sync.log" 2>&1 \
  || fail "sync: $(cat "$work/sync.log")"
ok "$(head -n1 "$work/sync.log")"
mkdir -p "$work/mirror/vendor"

# A pool directory that looks like the real thing (many versions, awkward names) to judge
# density and the sort links; served as is, never synced.
dir=$work/mirror/example/pool/main/o/openssl
mkdir -p "$dir/<b>not bold<i>"
for v in 3.0.9-1 3.0.11-1~deb12u2 3.0.13-1~deb12u1 3.0.14-1~deb12u2 3.0.15-1~deb12u1; do
  for p in libssl3 libssl-dev openssl libssl-doc; do
    for a in amd64 arm64; do
      [ "$p" = libssl-doc ] && a=all
      head -c $((($(printf '%s' "$p$v$a" | cksum | cut -d' ' -f1) % 3000000) + 900)) /dev/zero \
        >"$dir/${p}_${v}_$a.deb"
    done
  done
  head -c 15000000 /dev/zero >"$dir/openssl_${v%-*}.orig.tar.gz"
  printf 'Format: 3.0 (quilt)\n' >"$dir/openssl_$v.dsc"
done
printf x >"$dir/name with spaces & \"quotes\".txt"
printf x >"$dir/<script>alert(1)<"

# 3. Serve and check.
start serve --config "$work/mirror.toml"
base=$addr
page() { curl -fsS --max-time 10 "$base$1"; }
front=$(page /)
keyring=$work/up/keyring.gpg
grep -qF "deb [signed-by=$keyring] http://${base#http://}/example/ stable main" <<<"$front" \
  || fail "/ has no one-line apt source with the keyring"
grep -qF "Signed-By: $keyring" <<<"$front" || fail "/ has no deb822 Signed-By"
grep -qF "https://***@vendor.example/apt/" <<<"$front" || fail "/ does not show the redacted upstream"
! grep -q "s3cret" <<<"$front" || fail "/ shows upstream credentials"
grep -qF "/example/project/trace/" <<<"$front" || fail "/ has no trace links"
ok "/: apt lines with the keyring, redacted upstream, trace links"
mirror=$(page /example/)
[ "$(grep -bo 'Signed-By' <<<"$mirror" | head -n1 | cut -d: -f1)" -lt "$(grep -bo '<table>' <<<"$mirror" | cut -d: -f1)" ] \
  || fail "/example/ has no card above its listing"
ok "/example/: card above the listing"
order=$(page /example/pool/main/h/hello/ | grep -o 'href="hello_[^"]*"' | tr '\n' ' ')
[ "$order" = 'href="hello_1.0_all.deb" href="hello_9.0_all.deb" href="hello_10.0_all.deb" ' ] \
  || fail "version order: $order"
order=$(page '/example/pool/main/h/hello/?sort=size&order=desc' | grep -o 'href="hello_[^"]*"' | head -n1)
[ "$order" = 'href="hello_10.0_all.deb"' ] || fail "?sort=size&order=desc starts with $order"
ok "listings: version order, ?sort=size&order=desc"
code=$(curl -s -o "$work/health" -w '%{http_code}' "$base/healthz")
[ "$code" = 503 ] && grep -qx "vendor: never synced" "$work/health" || fail "/healthz: $code $(cat "$work/health")"
ok "/healthz: 503, $(cat "$work/health")"
metrics=$(page /metrics)
for name in debsync_build_info debsync_http_request_duration_seconds_bucket \
  'debsync_mirror_last_sync_fetched_files{mirror="example"}' \
  'debsync_mirror_release_age_seconds{mirror="example",suite="stable"}'; do
  grep -qF "$name" <<<"$metrics" || fail "/metrics has no $name"
done
ok "/metrics: build_info, duration histogram, last sync figures, Release age"
grep -q '"GET /example/ HTTP/1.1" 200 ' "$work/access.log" || fail "access log: $(cat "$work/access.log")"
ok "access log: $(wc -l <"$work/access.log") lines in $work/access.log"

# 4. Screenshots.
mkdir -p "$out"
shot() { # name path width height [flags]
  local name=$1 path=$2 w=$3 h=$4
  shift 4
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$work/chromium" --window-size="$w,$h" "$@" \
    --screenshot="$out/$name.png" "$base$path" >/dev/null 2>&1
  echo "$out/$name.png"
}
dark=(--force-dark-mode --blink-settings=preferredColorScheme=0)
light=(--blink-settings=preferredColorScheme=1)
for spec in front:/ mirror:/example/ pool:/example/pool/main/o/openssl/ hello:/example/pool/main/h/hello/; do
  name=${spec%%:*} path=${spec#*:}
  shot "$name-desktop-light" "$path" 1280 900 "${light[@]}"
  shot "$name-desktop-dark" "$path" 1280 900 "${dark[@]}"
  shot "$name-phone-light" "$path" 400 860 "${light[@]}"
  shot "$name-phone-dark" "$path" 400 860 "${dark[@]}"
done
echo "check-pages: OK"
