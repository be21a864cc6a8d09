#!/usr/bin/env bash
# The test command: installs what the tests drive (the real apt-get, debootstrap, gpg, curl,
# apt-ftparchive, ed for the pdiff checks) when missing, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in apt-ftparchive:apt-utils gpg:gnupg curl:curl debootstrap:debootstrap xz:xz-utils ed:ed; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} (run as root or install them)" >&2; exit 1
  fi
fi
exec cargo test "$@"
