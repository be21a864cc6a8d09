#!/usr/bin/env bash
# Builds the container image localhost/debsync:<version> with buildah, from scratch: no base
# image is pulled. It holds the dist binary, the shared libraries `ldd` names for it, CA
# certificates, the archive keyrings installed on this machine, a passwd entry for the
# non-root user 65532 and the example config; ENTRYPOINT is debsync. (The Containerfile at
# the top of the tree builds the same from distroless for builders that pull images.)
#   bash packaging/build-image.sh [IMAGE]      # needs buildah, a built target/dist/debsync
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
image=${1:-localhost/debsync:$version}
bin=${CARGO_TARGET_DIR:-target}/dist/debsync
[ -x "$bin" ] || { echo "no $bin: cargo build --profile dist (or cargo deb) first" >&2; exit 1; }
command -v buildah >/dev/null || { echo "buildah not installed (apt-get install buildah)" >&2; exit 1; }

rootfs=$(mktemp -d)
chmod 0755 "$rootfs"   # it becomes the image's /
ctr=
cleanup() { [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$rootfs" "$rootfs.tar"; }
trap cleanup EXIT

# The tree, assembled here and copied in as one layer.
install -D -m 0755 "$bin" "$rootfs/usr/bin/debsync"
# The loader and libraries the binary links (libc, libm, libgcc_s), at the paths it asks for.
# glibc >= 2.34 has the files and dns NSS modules built in: name resolution needs no more.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
for keyring in debian-archive-keyring.gpg ubuntu-archive-keyring.gpg; do
  if [ -f "/usr/share/keyrings/$keyring" ]; then
    install -D -m 0644 "/usr/share/keyrings/$keyring" "$rootfs/usr/share/keyrings/$keyring"
  else
    echo "note: /usr/share/keyrings/$keyring not on this machine: not in the image" >&2
  fi
done
install -D -m 0644 mirror.toml.example "$rootfs/etc/debsync/mirror.toml"
install -D -m 0644 /dev/null "$rootfs/etc/passwd"
echo 'root:x:0:0:root:/root:/sbin/nologin' >"$rootfs/etc/passwd"
echo 'debsync:x:65532:65532:debsync:/srv/mirror:/sbin/nologin' >>"$rootfs/etc/passwd"
printf 'root:x:0:\ndebsync:x:65532:\n' >"$rootfs/etc/group"
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
install -d -m 1777 "$rootfs/tmp"
install -d -m 0755 -o 65532 -g 65532 "$rootfs/srv/mirror"

ctr=$(buildah from scratch)
# A tar keeps the owners (buildah copy would make everything root's, /srv/mirror too).
tar -C "$rootfs" --numeric-owner -cf "$rootfs.tar" .
buildah add --quiet "$ctr" "$rootfs.tar" / >/dev/null
rm -f "$rootfs.tar"
buildah config \
  --user 65532:65532 \
  --workingdir /srv/mirror \
  --entrypoint '["/usr/bin/debsync"]' \
  --cmd '["serve", "--config", "/etc/debsync/mirror.toml"]' \
  --port 8080/tcp \
  --volume /srv/mirror \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --label org.opencontainers.image.title=debsync \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Debian/Ubuntu archive mirror synchronizer and static server" \
  --label org.opencontainers.image.licenses="MIT OR Apache-2.0" \
  "$ctr"
previous=$(buildah images --quiet --noheading "$image" 2>/dev/null || true)
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
ctr=
# The image this one replaced under the same name, now untagged: remove it (kept if in use).
if [ -n "$previous" ] && [ "$previous" != "$(buildah images --quiet --noheading "$image")" ]; then
  buildah rmi "$previous" >/dev/null 2>&1 || true
fi
echo "built $image"
