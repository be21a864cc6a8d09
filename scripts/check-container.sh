#!/usr/bin/env bash
# Builds the image with packaging/build-image.sh (buildah, from scratch: nothing is pulled)
# and runs it with podman the way k8s/ runs it (user 65532, read-only root, no capabilities,
# no new privileges): `--version`; `serve --root` of a directory, curled for /healthz and a
# file; `sync` of a small signed archive (example/make-upstream.sh, served from the host) into
# a volume, then `verify`. Exit non-zero on any failure. Not part of scripts/test.sh.
#   bash scripts/check-container.sh      # root; apt-get installs buildah, podman if missing
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image=localhost/debsync:$version

missing=()
for tool in buildah podman curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing: ${missing[*]} (run as root or install them)" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x target/dist/debsync ] || cargo build --profile dist --quiet
bash packaging/build-image.sh "$image"
podman image inspect "$image" --format \
  'image {{.Id}}: {{.Size}} bytes, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}} {{.Config.Cmd}}'
echo "layers: $(podman image inspect "$image" --format '{{len .RootFS.Layers}}')"

run=(podman run --rm --user 65532:65532 --read-only --cap-drop ALL
     --security-opt no-new-privileges --network host)

echo "== --version"
if ! out=$("${run[@]}" "$image" --version 2>&1); then
  # Seen in a sandbox: crun refuses hybrid cgroup hierarchies, and podman's default
  # nofile=1048576 is above the hard limit the host lets root set. runc and limits no higher
  # than the host's run the same image.
  echo "note: podman run with its defaults failed here: $out"
  command -v runc >/dev/null || { apt-get install -y -qq runc >/dev/null; }
  run=(podman --runtime runc run --rm --user 65532:65532 --read-only --cap-drop ALL
       --security-opt no-new-privileges --network host
       --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
  echo "note: retrying as: ${run[*]}"
  out=$("${run[@]}" "$image" --version)
fi
echo "$out"
[ "$out" = "debsync $version" ] || { echo "check-container: unexpected --version output" >&2; exit 1; }

echo "== serve --root"
work=$(mktemp -d)
name=debsync-check-$$
cleanup() { podman rm -f -t 5 "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/tree/dists"
echo "hello from the container" >"$work/tree/dists/hello.txt"
chmod -R a+rX "$work"
"${run[@]}" -d --name "$name" -v "$work/tree:/data:ro" "$image" \
  serve --root /data --listen 127.0.0.1:0 >/dev/null
addr=
for _ in $(seq 100); do
  addr=$(podman logs "$name" 2>/dev/null | grep -m1 -o 'http://[0-9.:]*') && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "check-container: serve did not start:" >&2; podman logs "$name" >&2; exit 1; }
echo "listening on $addr"
health=$(curl -fsS "$addr/healthz")
echo "/healthz: $health"
body=$(curl -fsS "$addr/dists/hello.txt")
echo "/dists/hello.txt: $body"
[ "$health" = ok ] && [ "$body" = "hello from the container" ] || { echo "check-container: wrong responses" >&2; exit 1; }
podman stop -t 10 "$name" >/dev/null

echo "== sync, verify"
bash example/make-upstream.sh "$work/up" >"$work/make-upstream.log" 2>&1 \
  || { tail -n 5 "$work/make-upstream.log" >&2; exit 1; }
bin=target/dist/debsync
"$bin" serve --root "$work/up" --listen 127.0.0.1:0 >"$work/up.log" 2>&1 &
up_pid=$!
trap 'kill "$up_pid" 2>/dev/null || true; cleanup' EXIT
up=
for _ in $(seq 100); do up=$(grep -m1 -o 'http://[0-9.:]*' "$work/up.log") && break; sleep 0.1; done
[ -n "$up" ] || { echo "check-container: upstream did not start: $(cat "$work/up.log")" >&2; exit 1; }
mkdir -p "$work/mirror" "$work/etc"
cp "$work/up/keyring.gpg" "$work/etc/keyring.gpg"
cat >"$work/etc/mirror.toml" <<TOML
root = "/srv/mirror"
[[mirror]]
name = "example"
upstream = "$up/"
suites = ["stable"]
components = ["main"]
architectures = ["amd64"]
keyring = "keyring.gpg"
TOML
chmod -R a+rX "$work/etc"; chown 65532:65532 "$work/mirror"
vols=(-v "$work/etc:/etc/debsync:ro" -v "$work/mirror:/srv/mirror")
"${run[@]}" --hostname debsync-check "${vols[@]}" "$image" sync --config /etc/debsync/mirror.toml
"${run[@]}" "${vols[@]}" "$image" verify --config /etc/debsync/mirror.toml
[ -f "$work/mirror/example/project/trace/debsync-check" ] \
  || { echo "check-container: no trace named after --hostname" >&2; exit 1; }
echo "files written as $(stat -c %u:%g "$work/mirror/example/dists/stable/InRelease")"
kill "$up_pid"; wait "$up_pid" 2>/dev/null || true
echo "check-container: OK"
