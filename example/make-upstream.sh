#!/usr/bin/env bash
# Builds a small, real, signed Debian archive in $1 from real .debs (apt-get download),
# with apt-ftparchive and a throw-away gpg key: the upstream the example mirrors.
# Usage: make-upstream.sh DIR [PACKAGE...]
set -euo pipefail
dir=${1:?usage: make-upstream.sh DIR [PACKAGE...]}
shift
packages=("${@:-hello sl cowsay}")
[ $# -gt 0 ] || packages=(hello sl cowsay)

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need apt-ftparchive apt-utils
need gpg gnupg

mkdir -p "$dir/pool/main" "$dir/debs"
dir=$(cd "$dir" && pwd)
# Real packages, cached between runs.
for p in "${packages[@]}"; do
  ls "$dir/debs/${p}_"*.deb >/dev/null 2>&1 && continue
  (cd "$dir/debs" && apt-get download -q "$p" 2>/dev/null) \
    || { apt-get update -qq && (cd "$dir/debs" && apt-get download -q "$p"); }
done
for deb in "$dir"/debs/*.deb; do
  name=$(dpkg-deb -f "$deb" Package)
  letter=${name:0:1}; case $name in lib*) letter=${name:0:4};; esac
  mkdir -p "$dir/pool/main/$letter/$name"
  cp -n "$deb" "$dir/pool/main/$letter/$name/"
done

export GNUPGHOME="$dir/gnupg"
if [ ! -f "$dir/keyring.gpg" ]; then
  rm -rf "$GNUPGHOME"; mkdir -m 700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "debsync example <example@invalid>" ed25519 sign never
  gpg --batch --quiet --export > "$dir/keyring.gpg"
fi

suite=stable
dists="$dir/dists/$suite"
rm -rf "$dists"
for arch in amd64 all; do
  mkdir -p "$dists/main/binary-$arch"
  (cd "$dir" && apt-ftparchive --arch "$arch" packages pool/main) > "$dists/main/binary-$arch/Packages"
  gzip -9kn "$dists/main/binary-$arch/Packages"
  xz -kf "$dists/main/binary-$arch/Packages"
done
(cd "$dists" && apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=debsync-example \
  -o APT::FTPArchive::Release::Label=debsync-example \
  -o APT::FTPArchive::Release::Suite=$suite \
  -o APT::FTPArchive::Release::Codename=example \
  -o APT::FTPArchive::Release::Architectures="amd64 all" \
  -o APT::FTPArchive::Release::Components=main \
  -o APT::FTPArchive::Release::Acquire-By-Hash=yes \
  release . > Release.new && mv Release.new Release)
gpg --batch --yes --quiet --clearsign -o "$dists/InRelease" "$dists/Release"
gpg --batch --yes --quiet -abs -o "$dists/Release.gpg" "$dists/Release"
echo "$dir"
