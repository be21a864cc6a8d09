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
# What real archives list beside Packages, and what apt clients fetch by default or with
# apt-file installed: Translation-en and Contents-<arch>.
mkdir -p "$dists/main/i18n"
python3 - "$dists/main/binary-amd64/Packages" > "$dists/main/i18n/Translation-en" <<'PY'
import hashlib, sys
seen = set()
for stanza in open(sys.argv[1], encoding="utf-8").read().split("\n\n"):
    fields, desc = {}, None
    for line in stanza.splitlines():
        if line.startswith(" ") and desc is not None:
            desc.append(line)
        elif ": " in line:
            key, value = line.split(": ", 1)
            fields[key] = value
            desc = [value] if key == "Description" else None
    name = fields.get("Package")
    if name and "Description" in fields and name not in seen:
        seen.add(name)
        text = "\n".join(d for d in [fields["Description"]] + [l for l in stanza.splitlines() if l.startswith(" ")])
        md5 = hashlib.md5((text + "\n").encode()).hexdigest()
        print(f"Package: {name}\nDescription-md5: {md5}\nDescription-en: {text}\n")
PY
xz -kf "$dists/main/i18n/Translation-en"
(cd "$dir" && apt-ftparchive contents pool/main) > "$dists/main/Contents-amd64"
gzip -9kn "$dists/main/Contents-amd64"
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
