#!/bin/sh
# Renders debsync's directory listing in headless Chromium (desktop, phone, dark mode) so the
# page can be looked at without a browser.
#
#   scripts/listing-screenshot.sh [OUTDIR]        (default: target/screenshots)
#
# Needs: chromium (apt-get install chromium), a built debsync (debug or release; built with
# cargo if neither exists). Uses only 127.0.0.1.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/target/screenshots}
target=${CARGO_TARGET_DIR:-$here/target}
bin=$target/release/debsync
[ -x "$bin" ] || bin=$target/debug/debsync
if [ ! -x "$bin" ]; then
    (cd "$here" && cargo build --quiet)
    bin=$target/debug/debsync
fi
command -v chromium >/dev/null || { echo "chromium not found (apt-get install chromium)" >&2; exit 1; }

work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# A pool directory that looks like the real thing, plus a few awkward names.
tree=$work/tree
dir=$tree/pool/main/o/openssl
mkdir -p "$dir" "$tree/dists/bookworm" "$tree/.debsync"
for v in 3.0.11-1~deb12u2 3.0.13-1~deb12u1 3.0.14-1~deb12u2 3.0.15-1~deb12u1; do
    for p in libssl3 libssl-dev openssl libssl-doc; do
        for a in amd64 arm64; do
            [ "$p" = libssl-doc ] && a=all
            head -c $(( ( $(printf '%s' "$p$v$a" | cksum | cut -d' ' -f1) % 3000000 ) + 900 )) /dev/zero \
                > "$dir/${p}_${v}_$a.deb"
        done
    done
    head -c 15000000 /dev/zero > "$dir/openssl_${v%-*}.orig.tar.gz"
    printf 'Format: 3.0 (quilt)\n' > "$dir/openssl_$v.dsc"
done
mkdir -p "$dir/by-hash" "$dir/<b>not bold<i>"
printf x > "$dir/name with spaces & \"quotes\".txt"
printf x > "$dir/<script>alert(1)<"
printf x > "$dir/emoji-😀.txt"
: > "$dir/.openssl_3.1.deb.debsync-tmp"
touch -d '2024-11-03 14:07' "$dir"/* "$dir"

"$bin" serve --root "$tree" --listen 127.0.0.1:0 > "$work/stdout" 2> "$work/stderr" &
server=$!
i=0
while ! grep -q '^listening on ' "$work/stdout" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { cat "$work/stderr" >&2; echo "debsync did not start" >&2; exit 1; }
    sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$work/stdout")
url=$base/pool/main/o/openssl/

mkdir -p "$out"
shot() { # name width height [extra flags]
    name=$1 w=$2 h=$3
    shift 3
    chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --hide-scrollbars \
        --user-data-dir="$work/chromium" --window-size="$w,$h" "$@" \
        --screenshot="$out/$name.png" "$url" > /dev/null 2>&1
    echo "$out/$name.png"
}
shot listing-desktop 1280 1000
shot listing-phone 390 844 --force-device-scale-factor=2
shot listing-dark 1280 700 --force-dark-mode --blink-settings=preferredColorScheme=0
