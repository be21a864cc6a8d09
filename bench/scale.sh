#!/usr/bin/env bash
# Whole-process SCALE benchmark: debsync vs aptmirs mirroring the real bookworm main/amd64
# index (63k stanzas, stand-in pool files) from a private loopback nginx.
#
#   bench/scale.sh            build or reuse the archive under ${BENCH_DIR:-/tmp/debsync-bench}
#   BENCH_FRESH=1 bench/scale.sh   rebuild the archive first
#
# Env: BENCH_DIR, BENCH_PORT (default: a free port), DEBSYNC_BIN (default:
# <repo>/target/release/debsync, copied to $BENCH_DIR/bin before timing), BENCH_FRESH=1,
# BENCH_SKIP_APTMIRS=1, HYPERFINE_RUNS (default 10).
# Order: build -> [debsync initial, aptmirs initial] -> [debsync noop, aptmirs noop]
#        -> make-scale.py --change 1 -> [debsync resync, aptmirs resync] -> table.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/debsync-bench}
RUNS=${HYPERFINE_RUNS:-10}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
UP=$BENCH_DIR/upstream
RES=$BENCH_DIR/results
mkdir -p "$RES" "$BENCH_DIR/bin"
rm -f "$RES"/*

T0=$(date +%s.%N)
declare -a PHASES=()
phase_start() { PH_NAME=$1; PH_T=$(date +%s.%N); echo "== $1"; }
phase_end() {
  local d; d=$(awk -v a="$PH_T" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  PHASES+=("$(printf '%-42s %7s s' "$PH_NAME" "$d")")
}
note() { echo "$*" | tee -a "$RES/notes"; }

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }

# ---------------------------------------------------------------- tools
phase_start "tools (apt / cargo install)"
need nginx nginx
need lz4 lz4
need xz xz-utils
need gpg gnupg
need hyperfine hyperfine
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
export PATH="$HOME/.cargo/bin:$PATH"
APTMIRS=""
if [ "${BENCH_SKIP_APTMIRS:-0}" != 1 ]; then
  if ! command -v aptmirs >/dev/null 2>&1; then
    echo "aptmirs missing: cargo install aptmirs (compiles for a few minutes)"
    cargo install aptmirs >"$RES/aptmirs-install.log" 2>&1 \
      || note "aptmirs: cargo install failed, see $RES/aptmirs-install.log: $(tail -1 "$RES/aptmirs-install.log")"
  fi
  command -v aptmirs >/dev/null 2>&1 && APTMIRS=$(command -v aptmirs)
fi
SRC_BIN=${DEBSYNC_BIN:-$repo/target/release/debsync}
[ -x "$SRC_BIN" ] || { echo "error: $SRC_BIN missing (cargo build --release first)" >&2; exit 1; }
cp "$SRC_BIN" "$BENCH_DIR/bin/debsync"
# The filesystem floor (bench/floor): the same pool's file work and nothing else, compiled.
FLOOR=""
if cargo build --release -q --manifest-path "$here/floor/Cargo.toml" >"$RES/floor-build.log" 2>&1; then
  FLOOR=$here/floor/target/release/debsync-floor
else
  note "floor: build failed, see $RES/floor-build.log"
fi
DEBSYNC=$BENCH_DIR/bin/debsync
echo "debsync: $SRC_BIN ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null), built $(date -r "$SRC_BIN" '+%F %T'))"
[ -n "$APTMIRS" ] && echo "aptmirs: $("$APTMIRS" --version 2>&1)"
phase_end

# ---------------------------------------------------------------- archive
phase_start "build SCALE archive"
if [ "${BENCH_FRESH:-0}" = 1 ] || [ ! -f "$UP/dists/bookworm/InRelease" ] || [ ! -f "$UP/keyring.gpg" ]; then
  python3 "$here/make-scale.py" "$UP" || { echo "error: make-scale.py failed" >&2; exit 1; }
else
  echo "reusing $UP (BENCH_FRESH=1 to rebuild)"
fi
phase_end

# ---------------------------------------------------------------- nginx
phase_start "start nginx"
PORT=${BENCH_PORT:-$(free_port)}
NG=$BENCH_DIR/nginx
nginx_start "$NG" "$UP" "$PORT" 2 'location ~ /\. { return 404; }' || exit 1
MOUNTED=()
cleanup() {
  kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  for m in "${MOUNTED[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  GNUPGHOME="$UP/.gnupg" gpgconf --kill gpg-agent 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
URL=$NGINX_URL
curl -sf -o /dev/null "$URL/dists/bookworm/Release" || { echo "error: nginx not serving $URL" >&2; cat "$NG/error.log"; exit 1; }
echo "upstream $URL (nginx pid $NGINX_PID)"
phase_end

# ---------------------------------------------------------------- mirror filesystems
# Each tool writes into its own freshly made ext4 (loop-mounted sparse image): the same
# filesystem state for every run, and no multi-minute `rm -rf` of the last run's 63k files
# (deleting that many files leaves ext4's inode allocator scanning "recently deleted" inodes,
# which slowed the next run's creates ~3x in a trial). BENCH_FS=dir uses plain dirs instead.
phase_start "fresh mirror filesystems"
MNT=$BENCH_DIR/mnt
DS_ROOT=$MNT/debsync/root
AM_OUT=$MNT/aptmirs/root
fresh_fs() {  # fresh_fs NAME: $MNT/NAME is a new empty ext4
  local img=$BENCH_DIR/$1.ext4 m=$MNT/$1
  mkdir -p "$m"
  mountpoint -q "$m" && umount "$m"
  rm -f "$img"; truncate -s 4G "$img"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$img" &&
    mount -o loop "$img" "$m" && MOUNTED+=("$m")
}
if [ "${BENCH_FS:-loop}" = loop ] && fresh_fs debsync && fresh_fs aptmirs; then
  echo "mirrors on fresh loop-mounted ext4: ${MOUNTED[*]}"
else
  [ "${BENCH_FS:-loop}" = loop ] && note "loop mount failed: mirrors in plain dirs under $MNT (rm -rf of the last run's trees included in this phase)"
  for m in "${MOUNTED[@]}"; do umount "$m"; done; MOUNTED=()
  rm -rf "$MNT/debsync" "$MNT/aptmirs"
fi
mkdir -p "$DS_ROOT" "$AM_OUT"
phase_end

# ---------------------------------------------------------------- configs
cat >"$BENCH_DIR/mirror.toml" <<EOF
root = "$DS_ROOT"

[sync]
concurrency = 8

[[mirror]]
name = "debian"
upstream = "$URL"
suites = ["bookworm"]
components = ["main"]
architectures = ["amd64"]
keyring = ["$UP/keyring.gpg"]
EOF
echo "deb [arch=amd64 pgp_pub_key=$UP/keyring.gpg] $URL/ bookworm main" >"$BENCH_DIR/aptmirs.list"
DS_CMD=("$DEBSYNC" sync --config "$BENCH_DIR/mirror.toml")
AM_CMD=("$APTMIRS" --config "$BENCH_DIR/aptmirs.list" --output "$AM_OUT" --dl-threads 8)

# ---------------------------------------------------------------- helpers
# timed TAG CMD...: /usr/bin/time wall + peak RSS into $RES/TAG.{time,out,err,rc}
timed() {
  local tag=$1; shift
  sync  # flush the previous step's writeback; caches stay warm (upstream is served from page cache)
  /usr/bin/time -f '%e %M %U %S' -o "$RES/$tag.time" "$@" >"$RES/$tag.out" 2>"$RES/$tag.err"
  echo $? >"$RES/$tag.rc"
  local rc; rc=$(cat "$RES/$tag.rc")
  printf '  %-18s rc=%s  %s s wall  %s s cpu  %s KB\n' "$tag" "$rc" "$(secs "$tag")" "$(cpu "$tag")" "$(tail -1 "$RES/$tag.time" | awk '{print $2}')"
  if [ "$rc" != 0 ]; then
    note "$tag: exit $rc; stderr tail:"
    grep -v '^Command exited' "$RES/$tag.err" | tail -5 | sed 's/^/    /' | tee -a "$RES/notes"
  fi
}
secs() { [ -f "$RES/$1.time" ] && tail -1 "$RES/$1.time" | awk '{print $1}' || echo "-"; }
cpu() { [ -f "$RES/$1.time" ] && tail -1 "$RES/$1.time" | awk '{printf "%.2f", $3+$4}' || echo "-"; }
mib() { [ -f "$RES/$1.time" ] && tail -1 "$RES/$1.time" | awk '{printf "%.1f", $2/1024}' || echo "-"; }
okrc() { [ -f "$RES/$1.rc" ] && [ "$(cat "$RES/$1.rc")" = 0 ]; }

# sample of pool files listed in upstream's current index (every 2000th stanza + changed ones)
sample_files() {
  awk '/^Filename: /{n++; if (n % 2000 == 1 || $2 ~ /\+b[0-9]+_/) print $2}' \
    "$UP/dists/bookworm/main/binary-amd64/Packages" | head -400
}
# verify_tree TAG MIRROR_ROOT: InRelease equal to upstream's, sample of pool files present + equal
verify_tree() {
  local tag=$1 m=$2 bad=0 n=0 f
  if ! cmp -s "$UP/dists/bookworm/InRelease" "$m/dists/bookworm/InRelease"; then
    note "$tag: VERIFY FAIL: $m/dists/bookworm/InRelease differs from upstream's (or is missing)"; bad=1
  fi
  while read -r f; do
    n=$((n + 1))
    if ! cmp -s "$UP/$f" "$m/$f"; then
      [ $bad -lt 5 ] && note "$tag: VERIFY FAIL: $m/$f missing or differs"; bad=$((bad + 1))
    fi
  done < <(sample_files)
  [ $bad = 0 ] && echo "  $tag: verified InRelease + $n sampled pool files" || note "$tag: $bad problems"
  return 0
}
# the mirror root aptmirs writes to (it nests <host>[:port]/<path>)
aptmirs_root() { dirname "$(dirname "$(dirname "$(find "$AM_OUT" -path '*/dists/bookworm/InRelease' -print -quit)")")" 2>/dev/null; }

# ---------------------------------------------------------------- runs
# Read the upstream's pool once so nginx serves every tool from page cache: a cold upstream
# disk is not the syncing tool's cost (a first run on a cold cache took 24 s, the next 7 s).
phase_start "warm upstream page cache"
find "$UP/pool" "$UP/dists" -type f -print0 | xargs -0 -P 2 cat >/dev/null
# Nothing else's writes in flight (the fresh filesystems, an earlier run's upstream change).
sync
phase_end

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average: $LOAD0"
phase_start "initial sync (debsync + aptmirs)"
timed debsync-initial "${DS_CMD[@]}"
verify_tree debsync-initial "$DS_ROOT/debian"
if [ -n "$APTMIRS" ]; then
  timed aptmirs-initial "${AM_CMD[@]}"
  r=$(aptmirs_root); [ -n "$r" ] && verify_tree aptmirs-initial "$r" || note "aptmirs-initial: no dists/bookworm/InRelease under $AM_OUT"
fi
phase_end

# Each thread count on its own fresh ext4, after the initial syncs (same page-cache state for
# the upstream files they read: none, the floor reads only the index).
phase_start "filesystem floor (1, 2, 4, 8 threads)"
FLOOR_BEST=""
if [ -n "$FLOOR" ]; then
  for n in 1 2 4 8; do
    if [ "${BENCH_FS:-loop}" = loop ] && fresh_fs "floor$n"; then dir=$MNT/floor$n/root
    else dir=$MNT/floor$n/root; rm -rf "$dir"; fi
    mkdir -p "$dir"; sync
    "$FLOOR" "$UP/dists/bookworm/main/binary-amd64/Packages" "$n" "$dir" >"$RES/floor$n.out" 2>&1 \
      || note "floor $n threads: $(tail -1 "$RES/floor$n.out")"
    echo "  $(tail -1 "$RES/floor$n.out")"
  done
  FLOOR_BEST=$(cat "$RES"/floor?.out 2>/dev/null | sed -n 's/.* secs=\([0-9.]*\).*/\1/p' | sort -g | head -1)
  FLOOR_SYNCED=$(cat "$RES"/floor?.out 2>/dev/null | sed -n 's/.* synced=\([0-9.]*\).*/\1/p' | sort -g | head -1)
fi
phase_end

phase_start "no-op re-sync (debsync + aptmirs)"
timed debsync-noop "${DS_CMD[@]}"
verify_tree debsync-noop "$DS_ROOT/debian"
[ -n "$APTMIRS" ] && timed aptmirs-noop "${AM_CMD[@]}"
phase_end

phase_start "hyperfine no-op x$RUNS (debsync + aptmirs)"
hf() {
  local tag=$1; shift
  hyperfine -N -w 1 -r "$RUNS" --export-json "$RES/$tag.json" "$(printf '%q ' "$@")" >"$RES/$tag.hf" 2>&1 \
    || hyperfine -w 1 -r "$RUNS" --export-json "$RES/$tag.json" "$(printf '%q ' "$@")" >"$RES/$tag.hf" 2>&1 \
    || note "$tag: hyperfine failed: $(tail -2 "$RES/$tag.hf")"
  grep -E 'Time|Range' "$RES/$tag.hf" | sed 's/^/  /'
}
hf debsync-noop-hf "${DS_CMD[@]}"
[ -n "$APTMIRS" ] && hf aptmirs-noop-hf "${AM_CMD[@]}"
phase_end

phase_start "make-scale.py --change 1"
python3 "$here/make-scale.py" "$UP" --change 1 || { echo "error: --change failed" >&2; exit 1; }
# The upstream's new indices (350 MB) reach its disk first: a remote upstream's writes are not
# the syncing tool's cost, and here they would compete with its syncfs for the same disk.
sync
phase_end

phase_start "resync after 1% change (debsync + aptmirs)"
timed debsync-resync "${DS_CMD[@]}"
verify_tree debsync-resync "$DS_ROOT/debian"
stale=$(find "$DS_ROOT/debian/pool" -type f | wc -l); listed=$(grep -c '^Filename: ' "$UP/dists/bookworm/main/binary-amd64/Packages")
[ "$stale" = "$listed" ] && echo "  debsync-resync: pool holds exactly the $listed listed files" \
  || note "debsync-resync: pool holds $stale files, index lists $listed"
if "$DEBSYNC" verify --help >/dev/null 2>&1; then
  timed debsync-verify "$DEBSYNC" verify --config "$BENCH_DIR/mirror.toml"
fi
if [ -n "$APTMIRS" ]; then
  timed aptmirs-resync "${AM_CMD[@]}"
  r=$(aptmirs_root); [ -n "$r" ] && verify_tree aptmirs-resync "$r"
fi
phase_end

# ---------------------------------------------------------------- report
hfmean() { [ -f "$RES/$1.json" ] && python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print('%.1f ms +- %.1f' % (r['mean']*1e3, r['stddev']*1e3))" "$RES/$1.json" || echo "-"; }
F='| %-8s | %7s s / %6s MiB | %8s s | %7s s / %6s MiB | %-19s | %7s s / %6s MiB | %8s s |\n'
row() {
  local t=$1
  printf "$F" "$t" \
    "$(secs $t-initial)" "$(mib $t-initial)" "$(cpu $t-initial)" "$(secs $t-noop)" "$(mib $t-noop)" "$(hfmean $t-noop-hf)" \
    "$(secs $t-resync)" "$(mib $t-resync)" "$(cpu $t-resync)"
}
{
  echo
  echo "load average before the runs: $LOAD0 (2 cores: anything well above 0 means the figures share the CPU)"
  echo "SCALE: $(grep -c '^Package: ' "$UP/dists/bookworm/main/binary-amd64/Packages") stanzas, upstream $URL, $(nproc) cores, $(date -u '+%F %T UTC')"
  printf '| %-8s | %-22s | %-10s | %-22s | %-19s | %-22s | %-10s |\n' tool "initial wall / RSS" "init cpu" "noop wall / RSS" "noop hyperfine x$RUNS" "resync-1% wall / RSS" "resync cpu"
  echo "|----------|------------------------|------------|------------------------|---------------------|------------------------|------------|"
  row debsync
  if [ -n "$APTMIRS" ]; then row aptmirs
  elif [ "${BENCH_SKIP_APTMIRS:-0}" = 1 ]; then echo "| aptmirs  | skipped (BENCH_SKIP_APTMIRS=1)"
  else echo "| aptmirs  | not run: $(grep aptmirs "$RES/notes" 2>/dev/null | head -1)"; fi
  printf "$F" target "1.5x fl" 16 - - 16 "5 ms" 0.4 16 -
  if [ -n "$FLOOR_BEST" ]; then
    echo "filesystem floor (bench/floor, best of 1/2/4/8 threads): $FLOOR_BEST s;" \
      "debsync initial / floor = $(awk -v a="$(secs debsync-initial)" -v b="$FLOOR_BEST" 'BEGIN{printf "%.2f", a/b}')x" \
      "$( [ -n "$APTMIRS" ] && awk -v a="$(secs aptmirs-initial)" -v b="$FLOOR_BEST" 'BEGIN{printf "(aptmirs %.2fx)", a/b}')"
    [ -n "$FLOOR_SYNCED" ] && echo "floor plus one syncfs (the barrier a durable sync adds): $FLOOR_SYNCED s;" \
      "debsync initial / that = $(awk -v a="$(secs debsync-initial)" -v b="$FLOOR_SYNCED" 'BEGIN{printf "%.2f", a/b}')x"
  fi
  for t in initial noop resync; do
    okrc debsync-$t || echo "debsync-$t FAILED (exit $(cat "$RES/debsync-$t.rc" 2>/dev/null))"
  done
  echo
  echo "phases:"
  printf '  %s\n' "${PHASES[@]}"
  printf '  %-42s %7s s\n' total "$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')"
  if [ -s "$RES/notes" ]; then echo; echo "notes:"; sed 's/^/  /' "$RES/notes"; fi
} | tee "$RES/summary.txt"
