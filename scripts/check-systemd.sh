#!/usr/bin/env bash
# Checks systemd/: `systemd-analyze verify` on every unit, then
# `systemd-analyze security --offline=yes` on each service, printing its exposure score
# (0 = fully locked down, 10 = unprotected). Then, with strace, the system calls and socket
# families debsync really uses (sync, no-op sync, verify, sync --full, a changed upstream with
# a deletion, serve answering files, ranges, listings, /healthz and /metrics, all against a
# small signed archive built by example/make-upstream.sh) are checked against each service's
# SystemCallFilter= and RestrictAddressFamilies=: a filter that would kill or fail a real run
# shows here, without running systemd. Exit non-zero if a unit does not verify, a score is
# above MAX_EXPOSURE (default 2.0), or a used call or family is filtered. Not part of
# scripts/test.sh.
#   bash scripts/check-systemd.sh            # NO_TRACE=1 skips the strace part
# Needs systemd-analyze >= 252 (--offline); PID 1 need not be systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${MAX_EXPOSURE:-2.0}

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-systemd: systemd-analyze not installed (apt-get install systemd); nothing checked" >&2
  exit 1
fi
version=$(systemd-analyze --version | awk 'NR==1 {print $2}')
echo "systemd-analyze $version"

# verify checks ExecStart= names an executable. Without the package installed, check copies
# whose /usr/bin/debsync is the binary built in target/ (nothing else changes).
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
cp systemd/*.service systemd/*.timer "$work/"
if [ ! -x /usr/bin/debsync ]; then
  bin=$(ls -t target/dist/debsync target/release/debsync target/debug/debsync 2>/dev/null | head -n1 || true)
  if [ -z "$bin" ]; then
    echo "check-systemd: no /usr/bin/debsync and no built binary: cargo build first" >&2
    exit 1
  fi
  echo "(/usr/bin/debsync not installed: units checked with ExecStart=$PWD/$bin)"
  sed -i "s|/usr/bin/debsync|$PWD/$bin|" "$work"/*.service
fi

fail=0
for unit in "$work"/*.service "$work"/*.timer; do
  name=$(basename "$unit")
  # A template is verified as an instance, the way it runs.
  case "$name" in *@.*) cp "$unit" "$work/${name/@./@debian.}"; unit="$work/${name/@./@debian.}" ;; esac
  if out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
    echo "verify $name: OK"
  else
    echo "verify $name: FAILED"; echo "$out" | sed 's/^/  /'; fail=1
  fi
done

echo
for unit in "$work"/*.service; do
  name=$(basename "$unit")
  case "$name" in *@debian.service) continue ;; esac
  out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1) || true
  score=$(echo "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
  if [ -z "$score" ]; then
    echo "security $name: no score"; echo "$out" | tail -n 5 | sed 's/^/  /'; fail=1; continue
  fi
  echo "security $name: exposure $score ($(echo "$out" | sed -n 's/.*Overall exposure level for .*: [0-9.]* \([A-Z]*\).*/\1/p'))"
  # What is still open, with its weight.
  echo "$out" | grep '✗' | sed -E 's/ {2,}/  /g; s/^/  /'
  if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
    echo "  above MAX_EXPOSURE=$max"; fail=1
  fi
done

echo
if [ -n "${NO_TRACE:-}" ]; then
  echo "syscalls: skipped (NO_TRACE)"
elif ! command -v strace >/dev/null && { [ "$(id -u)" != 0 ] || ! apt-get install -y -qq strace >/dev/null 2>&1; }; then
  echo "syscalls: skipped: strace not installed"
else
  exe=$(sed -n 's|^ExecStart=\([^ ]*\) .*|\1|p' "$work/debsync-serve.service")
  trace="$work/trace"; mkdir -p "$trace"
  bash example/make-upstream.sh "$work/up" >"$work/make-upstream.log" 2>&1 \
    || { echo "syscalls: example/make-upstream.sh failed:"; tail -n 5 "$work/make-upstream.log"; exit 1; }
  serve() { # VAR LOG ARGS...: start a server (not in a subshell: its pid is kept), VAR=address
    local var=$1 log=$2; shift 2
    "$@" --listen 127.0.0.1:0 >"$log" 2>"$log.err" & pids+=($!)
    for _ in $(seq 100); do
      printf -v "$var" %s "$(grep -m1 -o 'http://[0-9.:]*' "$log" 2>/dev/null)"
      [ -z "${!var}" ] || return 0
      sleep 0.1
    done
    echo "did not start: $(cat "$log.err")" >&2; return 1
  }
  # strace -o FILE PROG blocks fatal signals: end the traced child, and strace ends with it.
  stop() {
    for p in "${pids[@]}"; do
      pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
    done
    pids=()
  }
  traced() { local name=$1; shift; strace -f -qq -ff -o "$trace/$name" "$exe" "$@" >/dev/null 2>&1; }
  serve up "$work/up.log" "$exe" serve --root "$work/up"
  cat >"$work/m.toml" <<TOML
root = "mirror"
[[mirror]]
name = "example"
upstream = "$up/"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "up/keyring.gpg"
TOML
  traced sync-initial sync --config "$work/m.toml"
  traced sync-noop sync --config "$work/m.toml"
  traced verify verify --config "$work/m.toml"
  traced sync-full sync --full --config "$work/m.toml"
  serve mirror "$work/mirror.log" strace -f -qq -ff -o "$trace/serve" "$exe" serve --config "$work/m.toml"
  curl -fsS -o /dev/null "$mirror/healthz"
  curl -fsS -o /dev/null "$mirror/metrics"
  curl -fsS -o /dev/null "$mirror/example/dists/stable/InRelease"
  curl -fsS -o /dev/null -r 0-99 "$mirror/example/dists/stable/InRelease"
  curl -fsS -o /dev/null -H 'Accept: application/json' "$mirror/example/pool/main/"
  curl -fsS -o /dev/null "$mirror/example/dists/stable/"
  stop
  # Upstream changes shape: one package fewer (a deletion), a new Release (a swap).
  rm -rf "$work/up/pool/main/c" "$work/up/debs/"cowsay_*
  bash example/make-upstream.sh "$work/up" hello sl >>"$work/make-upstream.log" 2>&1
  serve up "$work/up.log" "$exe" serve --root "$work/up"
  sed -i "s|^upstream = .*|upstream = \"$up/\"|" "$work/m.toml"
  traced sync-changed sync --force-delete --config "$work/m.toml"
  stop
  python3 - "$trace" "$work"/*.service <<'PY' || fail=1
import collections, os, re, subprocess, sys
trace, units = sys.argv[1], sys.argv[2:]
groups, cur = {}, None
for line in subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), [])
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.append(line.strip())
def expand(name, seen=()):
    if not name.startswith("@"):
        return {name}
    return set().union(*(expand(x, seen + (name,)) for x in groups.get(name, []) if x not in seen))
calls, families = collections.Counter(), collections.Counter()
for f in os.listdir(trace):
    for line in open(os.path.join(trace, f), errors="replace"):
        m = re.match(r"([a-z0-9_]+)\(", line)
        if m:
            calls[m.group(1)] += 1
        m = re.match(r"socket\((AF_[A-Z0-9]+)", line)
        if m:
            families[m.group(1)] += 1
print(f"syscalls: {len(calls)} distinct calls made by debsync (sync, verify, serve), "
      f"socket families {sorted(families)}")
bad = False
for path in units:
    allowed, families_ok = None, None
    for line in open(path):
        key, _, value = line.strip().partition("=")
        if key == "SystemCallFilter" and value:
            deny = value.startswith("~")
            names = set().union(*(expand(n) for n in value.lstrip("~").split()))
            if allowed is None:
                allowed = names if not deny else None
            if deny and allowed is not None:
                allowed -= names
        if key == "RestrictAddressFamilies" and value:
            families_ok = set(value.split())
    name = os.path.basename(path)
    if name.endswith("@debian.service"):
        continue
    blocked = sorted(c for c in calls if allowed is not None and c not in allowed)
    unfamiliar = sorted(f for f in families if families_ok is not None and f not in families_ok)
    if blocked or unfamiliar:
        bad = True
        print(f"syscalls {name}: FILTERED: calls {blocked}, families {unfamiliar}")
    else:
        print(f"syscalls {name}: OK, every call and family allowed")
sys.exit(1 if bad else 0)
PY
fi

echo
if [ "$fail" = 0 ]; then
  echo "check-systemd: OK"
else
  echo "check-systemd: FAILED" >&2
  exit 1
fi
