#!/usr/bin/env bash
# The main job, end to end on one machine: build debsync, build a small signed upstream archive
# from real .debs, serve it on 127.0.0.1, mirror it with `debsync sync`, serve the mirror with
# `debsync serve`, and prove it with the real apt-get. Then keep serving until Ctrl-C.
#   bash example/run.sh           # sync, check with apt, serve in the foreground
#   bash example/run.sh --check   # same, but exit after the apt check (used by CI)
# DEBSYNC_EXAMPLE_DIR (default example/out) is the work directory; DEBSYNC_BIN a prebuilt binary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${DEBSYNC_EXAMPLE_DIR:-$repo/example/out}
mode=${1:-serve}

bin=${DEBSYNC_BIN:-}   # a debsync binary to use instead of building one (the tests pass theirs)
if [ -z "$bin" ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
  bin=$repo/target/release/debsync
fi

"$repo/example/make-upstream.sh" "$work/upstream" >/dev/null

# The servers this script started. On any exit (success, failure, Ctrl-C, SIGTERM) they are
# stopped and waited for, and the script checks that none survived: it never leaves a
# `debsync serve` behind. (make-upstream.sh's gpg may have started a gpg-agent: stopped too.)
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then echo "debsync serve (pid $p) still running" >&2; status=1; fi
  done
  gpgconf --homedir "$work/upstream/gnupg" --kill gpg-agent 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start `debsync serve` on a free port; the address it bound lands in $served. Called in this
# shell, never in a command substitution (a subshell), so that the pid reaches $pids above.
serve() {
  local log=$1; shift
  "$bin" serve --listen 127.0.0.1:0 "$@" >"$log" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 100); do
    if served=$(grep -m1 -o 'http://[0-9.:]*' "$log" 2>/dev/null); then return; fi
    sleep 0.1
  done
  echo "debsync serve did not start: $(cat "$log.err")" >&2; exit 1
}

serve "$work/upstream.log" --root "$work/upstream"
upstream=$served
echo "upstream archive:  $upstream/"

cat >"$work/mirror.toml" <<TOML
root = "mirror"

[[mirror]]
name = "example"
upstream = "$upstream/"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "upstream/keyring.gpg"
TOML

"$bin" sync --config "$work/mirror.toml"
"$bin" sync --config "$work/mirror.toml"   # the no-op run: upstream unchanged

serve "$work/mirror.log" --config "$work/mirror.toml"
mirror=$served
echo "mirror served at:  $mirror/example/"

# apt as a real client runs it, fully private: APT_CONFIG is read before /etc/apt/apt.conf.d,
# so it can move every Dir:: away from this machine's apt (its apt.conf.d may set
# Acquire::Languages "none" or add targets). apt's default languages stay in force, and the
# private apt.conf.d carries apt-file's Contents target, as on a machine with apt-file.
apt=$work/apt
rm -rf "$apt"; mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/etc/apt.conf.d" "$apt/etc/preferences.d" "$apt/etc/trusted.gpg.d" "$apt/etc/sources.list.d"
echo "deb [signed-by=$work/upstream/keyring.gpg] $mirror/example stable main" >"$apt/etc/sources.list"
touch "$apt/state/status"
cat >"$apt/etc/apt.conf" <<CONF
Dir::State "$apt/state";
Dir::State::status "$apt/state/status";
Dir::Cache "$apt/cache";
Dir::Etc "$apt/etc";
Dir::Etc::main "$apt/etc/apt.conf";
Dir::Etc::Parts "$apt/etc/apt.conf.d";
Dir::Etc::SourceList "$apt/etc/sources.list";
Dir::Etc::SourceParts "$apt/etc/sources.list.d";
Dir::Etc::PreferencesParts "$apt/etc/preferences.d";
Dir::Etc::TrustedParts "$apt/etc/trusted.gpg.d";
APT::Architecture "amd64";
Debug::NoLocking "1";
APT::Sandbox::User "root";
CONF
cat >"$apt/etc/apt.conf.d/50apt-file.conf" <<'CONF'
Acquire::IndexTargets {
    deb::Contents-deb  {
        MetaKey "$(COMPONENT)/Contents-$(ARCHITECTURE)";
        ShortDescription "Contents-$(ARCHITECTURE)";
        Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Contents (deb)";
        flatMetaKey "Contents-$(ARCHITECTURE)";
        flatDescription "$(RELEASE) Contents (deb)";
        PDiffs "true";
        KeepCompressed "true";
    };
};
CONF
export APT_CONFIG=$apt/etc/apt.conf
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
if apt-config dump | grep -q '^Acquire::Languages "none"'; then
  echo "the private apt configuration still says Acquire::Languages none" >&2; exit 1
fi
out=$(LC_ALL=C apt-get update 2>&1); echo "$out"
if grep -qE '^(W|E|Err):' <<<"$out"; then echo "apt-get update reported a problem" >&2; exit 1; fi
for want in "Translation-en" "Contents (deb)"; do
  grep -q "$want" <<<"$out" || { echo "apt-get update did not fetch $want" >&2; exit 1; }
done
(cd "$work" && apt-get download hello && ls -l hello_*.deb && rm -f hello_*.deb)
echo "apt-get update (default languages, apt-file's Contents) + download against the mirror: OK"

if [ "$mode" = "--check" ]; then exit 0; fi
echo "serving $mirror/example/ (Ctrl-C to stop); try: curl $mirror/example/dists/stable/InRelease"
wait
