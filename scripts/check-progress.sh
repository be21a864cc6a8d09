#!/usr/bin/env bash
# Watches a real `debsync sync` in a terminal, as an admin would: the sync of a local, slowed
# down upstream runs inside a detached tmux session, and the pane (tmux capture-pane) must show
# the live progress line (files, bytes, rate, ETA) while it runs, then the final summary line
# and exit status 0.
#
#   bash scripts/check-progress.sh        # exit 0 when both lines were seen
#
# The upstream: PACKAGES (default 240) packages of 16 KiB in a signed archive made here (a gpg
# key made for the run), served on 127.0.0.1 by a small Python server that holds every pool
# request DELAY seconds (default 0.1), so the pool stage lasts a few seconds with concurrency 8.
# DEBSYNC_BIN: a debsync binary to use (default: target/debug/debsync, built if missing).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
packages=${PACKAGES:-240}
delay=${DELAY:-0.1}

bin=${DEBSYNC_BIN:-$repo/target/debug/debsync}
if [ ! -x "$bin" ]; then
  cargo build --quiet --manifest-path "$repo/Cargo.toml"
fi
if ! command -v tmux >/dev/null; then
  apt-get install -y -qq tmux >/dev/null
fi
for tool in python3 gpg; do
  command -v "$tool" >/dev/null || { echo "check-progress: needs $tool" >&2; exit 1; }
done

work=$(mktemp -d /tmp/debsync-progress.XXXXXX)
session=debsync-progress-$$
server=
cleanup() {
  local status=$?
  tmux kill-session -t "$session" 2>/dev/null || true
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  gpgconf --homedir "$work/gnupg" --kill gpg-agent 2>/dev/null || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# 1. The upstream archive: pool files, Packages(.gz), Release, InRelease signed by a new key.
python3 - "$work/upstream" "$packages" <<'PY'
import gzip, hashlib, os, sys, email.utils
root, count = sys.argv[1], int(sys.argv[2])
stanzas = []
for i in range(count):
    name = f"pkg{i:05d}"
    rel = f"pool/main/p/{name}/{name}_1.0-1_amd64.deb"
    body = os.urandom(16 * 1024)
    os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
    with open(os.path.join(root, rel), "wb") as f:
        f.write(body)
    stanzas.append(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Check <check@example.invalid>\n"
        f"Filename: {rel}\nSize: {len(body)}\nSHA256: {hashlib.sha256(body).hexdigest()}\n"
        f"Description: package {i} of the progress check\n"
    )
packages = "\n".join(stanzas).encode()
index = {"main/binary-amd64/Packages": packages, "main/binary-amd64/Packages.gz": gzip.compress(packages)}
dists = os.path.join(root, "dists/stable")
for rel, data in index.items():
    os.makedirs(os.path.join(dists, os.path.dirname(rel)), exist_ok=True)
    with open(os.path.join(dists, rel), "wb") as f:
        f.write(data)
lines = [
    "Origin: Check", "Label: Check", "Suite: stable", "Codename: bookworm",
    f"Date: {email.utils.formatdate(usegmt=True)}",
    "Architectures: amd64", "Components: main", "Description: progress check archive", "SHA256:",
]
lines += [f" {hashlib.sha256(d).hexdigest()} {len(d)} {rel}" for rel, d in index.items()]
with open(os.path.join(dists, "Release"), "w") as f:
    f.write("\n".join(lines) + "\n")
PY
mkdir -m 700 "$work/gnupg"
gpg --homedir "$work/gnupg" --batch --quiet --passphrase '' \
  --quick-gen-key 'debsync progress check <check@example.invalid>' ed25519 sign never 2>/dev/null
gpg --homedir "$work/gnupg" --batch --quiet --yes --clearsign \
  -o "$work/upstream/dists/stable/InRelease" "$work/upstream/dists/stable/Release"
gpg --homedir "$work/gnupg" --batch --quiet --export >"$work/keyring.gpg"

# 2. The slow upstream: every pool request waits $delay seconds.
cat >"$work/slow.py" <<'PY'
import functools, http.server, sys, time
root, port_file, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
class Slow(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if "/pool/" in self.path:
            time.sleep(delay)
        super().do_GET()
    def log_message(self, *args):
        pass
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Slow, directory=root))
with open(port_file + ".tmp", "w") as f:
    f.write(str(httpd.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
httpd.serve_forever()
PY
python3 "$work/slow.py" "$work/upstream" "$work/port" "$delay" &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "check-progress: the upstream server did not start" >&2; exit 1; }
upstream="http://127.0.0.1:$(cat "$work/port")/"

cat >"$work/mirror.toml" <<TOML
root = "$work/root"
[sync]
retry_delay_ms = 0
[[mirror]]
name = "debian"
upstream = "$upstream"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "$work/keyring.gpg"
TOML

# 3. The sync in a terminal: a detached tmux session, wide enough for the progress line. The
# pane stays open after the sync (sleep) so its last screen can be read.
tmux new-session -d -s "$session" -x 220 -y 50 \
  "'$bin' sync --config '$work/mirror.toml'; echo \"sync exit status \$?\"; sleep 600"

# 4. Watch the pane: the progress line while the pool stage runs, then the summary.
progress='debian: pool: [0-9]+/[0-9]+ files, [0-9.]+ [KMG]?i?B received, [0-9.]+ [KMG]?i?B/s, ETA [0-9]'
summary="debian: updated stable in [0-9.]+ s: $packages files fetched"
seen_progress=
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ]; do
  pane=$(tmux capture-pane -p -t "$session")
  if [ -z "$seen_progress" ] && line=$(grep -Eo "$progress.*" <<<"$pane"); then
    seen_progress=$line
    echo "progress line seen: $seen_progress"
  fi
  if grep -q 'sync exit status' <<<"$pane"; then break; fi
  sleep 0.1
done
pane=$(tmux capture-pane -p -t "$session")
status=0
if [ -z "$seen_progress" ]; then
  echo "FAIL: no progress line (files, bytes, rate, ETA) in the pane while the sync ran" >&2; status=1
fi
if line=$(grep -Eo "$summary.*" <<<"$pane"); then
  echo "summary line seen: $line"
else
  echo "FAIL: no summary line \"$summary\" in the pane" >&2; status=1
fi
if ! grep -q 'sync exit status 0' <<<"$pane"; then
  echo "FAIL: the sync did not exit 0" >&2; status=1
fi
if [ "$status" -ne 0 ]; then
  echo "--- last pane:" >&2; echo "$pane" >&2
  exit "$status"
fi
echo "check-progress: ok"
