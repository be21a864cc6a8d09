#!/usr/bin/env bash
# Checks systemd/: `systemd-analyze verify` on every unit, then
# `systemd-analyze security --offline=yes` on each service, printing its exposure score
# (0 = fully locked down, 10 = unprotected). Exit non-zero if a unit does not verify or a
# score is above MAX_EXPOSURE (default 2.0). Not part of scripts/test.sh.
#   bash scripts/check-systemd.sh
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
trap 'rm -rf "$work"' EXIT
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
if [ "$fail" = 0 ]; then
  echo "check-systemd: OK"
else
  echo "check-systemd: FAILED" >&2
  exit 1
fi
