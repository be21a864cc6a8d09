#!/usr/bin/env python3
"""Build (or change) the SCALE archive: a signed Debian archive with the real bookworm
main/amd64 Packages index (every stanza, every field) whose pool files are small generated
stand-ins, so a whole-archive mirror run is cheap on disk but real in index size and file count.

  make-scale.py DIR                 build the archive in DIR (replaces DIR/dists and DIR/pool)
  make-scale.py DIR --change PCT    on an existing DIR: bump the version of PCT% of stanzas
                                    (new pool file, old one deleted), rewrite indices + Release,
                                    re-sign. Each call picks a different deterministic slice.

Source: /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4
(decompressed with the `lz4` CLI). Signing: a throw-away ed25519 key in DIR/.gnupg, public
keyring exported to DIR/keyring.gpg. Stdlib only, plus the lz4, gzip, xz and gpg CLIs.
"""
import argparse
import email.utils
import hashlib
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone

SOURCE = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
SUITE = "bookworm"
DATE_FMT = "%a, %d %b %Y %H:%M:%S UTC"
INDEX_DIRS = ("main/binary-amd64", "main/binary-all")
BY_HASH_KEEP = 3  # generations of by-hash files kept upstream per index (besides the current)


def log(msg):
    print(f"make-scale: {msg}", file=sys.stderr, flush=True)


def pool_content(filename):
    """Small, unique content derived from the file name: 100..299 bytes."""
    seed = hashlib.sha256(filename.encode()).hexdigest()
    length = 100 + int(seed[:4], 16) % 200
    head = f"debsync scale bench pool file {filename}\n".encode()
    body = (seed * (length // 64 + 2)).encode()
    return (head + body)[:length]


def rewrite_stanza(stanza, filename, data, version=None):
    """Return stanza with Filename/Size/MD5sum/SHA1/SHA256 (and Version if given) rewritten,
    keeping field order and every other field verbatim."""
    out = []
    for line in stanza.split("\n"):
        if line.startswith("Filename: "):
            line = "Filename: " + filename
        elif line.startswith("Size: "):
            line = "Size: %d" % len(data)
        elif line.startswith("MD5sum: "):
            line = "MD5sum: " + hashlib.md5(data).hexdigest()
        elif line.startswith("SHA1: "):
            line = "SHA1: " + hashlib.sha1(data).hexdigest()
        elif line.startswith("SHA256: "):
            line = "SHA256: " + hashlib.sha256(data).hexdigest()
        elif version is not None and line.startswith("Version: "):
            line = "Version: " + version
        out.append(line)
    return "\n".join(out)


def field(stanza, name):
    prefix = name + ": "
    for line in stanza.split("\n"):
        if line.startswith(prefix):
            return line[len(prefix):]
    raise ValueError(f"stanza without {name}: {stanza[:80]!r}")


def split_stanzas(text):
    return [s for s in text.split("\n\n") if s.strip()]


class PoolWriter:
    def __init__(self, root):
        self.root = root
        self.dirs = set()

    def write(self, rel, data):
        path = os.path.join(self.root, rel)
        d = os.path.dirname(path)
        if d not in self.dirs:
            os.makedirs(d, exist_ok=True)
            self.dirs.add(d)
        with open(path, "wb") as f:
            f.write(data)


def write_indices(root, amd64_text):
    """Write Packages, .gz, .xz for binary-amd64 (given text) and an empty binary-all.
    Returns {relpath-under-dists/suite: bytes-path}."""
    dists = os.path.join(root, "dists", SUITE)
    written = []
    procs = []
    for sub, text in (("main/binary-amd64", amd64_text), ("main/binary-all", "")):
        d = os.path.join(dists, sub)
        os.makedirs(d, exist_ok=True)
        plain = os.path.join(d, "Packages")
        tmp = plain + ".new"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, plain)
        written.append(f"{sub}/Packages")
        for ext, cmd in ((".gz", ["gzip", "-6", "-n", "-c"]), (".xz", ["xz", "-T2", "-3", "-c"])):
            fout = open(plain + ext + ".new", "wb")
            fin = open(plain, "rb")
            procs.append((subprocess.Popen(cmd, stdin=fin, stdout=fout), fin, fout, plain + ext))
            written.append(f"{sub}/Packages{ext}")
    for p, fin, fout, target in procs:
        if p.wait() != 0:
            sys.exit(f"make-scale: compressing {target} failed")
        fin.close()
        fout.close()
        os.replace(target + ".new", target)
    return written


def file_hashes(path):
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            size += len(b)
            md5.update(b)
            sha256.update(b)
    return size, md5.hexdigest(), sha256.hexdigest()


def write_by_hash(dists, rel, sha256):
    bh = os.path.join(dists, os.path.dirname(rel), "by-hash", "SHA256")
    os.makedirs(bh, exist_ok=True)
    target = os.path.join(bh, sha256)
    if not os.path.exists(target):
        shutil.copyfile(os.path.join(dists, rel), target + ".new")
        os.replace(target + ".new", target)
    now = time.time()
    os.utime(target, (now, now))
    return bh


def prune_by_hash(bh_dirs, current):
    """Keep the current by-hash files plus BY_HASH_KEEP older generations per directory."""
    for bh in bh_dirs:
        old = [e for e in os.scandir(bh) if e.name not in current and not e.name.endswith(".new")]
        old.sort(key=lambda e: e.stat().st_mtime, reverse=True)
        # every generation adds 3 files (Packages, .gz, .xz) per directory
        for e in old[BY_HASH_KEEP * 3:]:
            os.unlink(e.path)


def previous_date(dists):
    try:
        with open(os.path.join(dists, "Release"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("Date: "):
                    return email.utils.parsedate_to_datetime(line[6:].strip().replace("UTC", "+0000")).timestamp()
    except FileNotFoundError:
        pass
    return None


def write_release(root, written):
    dists = os.path.join(root, "dists", SUITE)
    now = int(time.time())
    prev = previous_date(dists)
    if prev is not None:
        now = max(now, int(prev) + 1)
    date = datetime.fromtimestamp(now, timezone.utc).strftime(DATE_FMT)
    entries = []
    bh_dirs, current = set(), set()
    for rel in sorted(written):
        size, md5, sha256 = file_hashes(os.path.join(dists, rel))
        entries.append((rel, size, md5, sha256))
        bh_dirs.add(write_by_hash(dists, rel, sha256))
        current.add(sha256)
    prune_by_hash(bh_dirs, current)
    lines = [
        "Origin: Debian",
        "Label: Debian",
        f"Suite: {SUITE}",
        f"Codename: {SUITE}",
        f"Date: {date}",
        "Acquire-By-Hash: yes",
        "Architectures: amd64 all",
        "Components: main",
        "Description: debsync SCALE bench archive (real bookworm main/amd64 index, stand-in pool)",
        "MD5Sum:",
    ]
    lines += [f" {md5} {size:>16} {rel}" for rel, size, md5, _ in entries]
    lines.append("SHA256:")
    lines += [f" {sha} {size:>16} {rel}" for rel, size, _, sha in entries]
    tmp = os.path.join(dists, "Release.new")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(dists, "Release"))
    return date


def gpg_env(root):
    env = dict(os.environ)
    env["GNUPGHOME"] = os.path.join(root, ".gnupg")
    return env


def ensure_key(root):
    env = gpg_env(root)
    home = env["GNUPGHOME"]
    keyring = os.path.join(root, "keyring.gpg")
    if os.path.isfile(keyring) and os.path.isdir(home):
        return env
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home, mode=0o700)
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
                    "debsync scale bench <bench@invalid>", "ed25519", "sign", "never"],
                   env=env, check=True)
    with open(keyring + ".new", "wb") as f:
        subprocess.run(["gpg", "--batch", "--quiet", "--export"], env=env, stdout=f, check=True)
    os.replace(keyring + ".new", keyring)
    return env


def sign(root):
    env = ensure_key(root)
    dists = os.path.join(root, "dists", SUITE)
    rel = os.path.join(dists, "Release")
    for args, out in ((["--clearsign"], "InRelease"), (["-abs"], "Release.gpg")):
        target = os.path.join(dists, out)
        subprocess.run(["gpg", "--batch", "--yes", "--quiet", *args, "-o", target + ".new", rel],
                       env=env, check=True)
        os.replace(target + ".new", target)
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)


def build(root):
    t0 = time.time()
    for sub in ("dists", "pool"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    os.makedirs(root, exist_ok=True)
    try:
        os.unlink(os.path.join(root, ".scale-generation"))
    except FileNotFoundError:
        pass
    text = subprocess.run(["lz4", "-dc", SOURCE], check=True, stdout=subprocess.PIPE).stdout.decode("utf-8")
    stanzas = split_stanzas(text)
    log(f"{len(stanzas)} stanzas read from {SOURCE} ({time.time() - t0:.1f} s)")
    pool = PoolWriter(root)
    out = []
    seen = set()
    for s in stanzas:
        fn = field(s, "Filename")
        if fn in seen:
            sys.exit(f"make-scale: duplicate Filename {fn}")
        seen.add(fn)
        data = pool_content(fn)
        pool.write(fn, data)
        out.append(rewrite_stanza(s, fn, data))
    log(f"{len(out)} pool files written ({time.time() - t0:.1f} s)")
    finish(root, out, t0)


def bumped_filename(fn, suffix):
    d, base = os.path.split(fn)
    stem, ext = os.path.splitext(base)
    parts = stem.split("_")
    if len(parts) == 3:
        parts[1] += suffix
        return os.path.join(d, "_".join(parts) + ext)
    return os.path.join(d, stem + suffix + ext)


def change(root, pct):
    t0 = time.time()
    dists = os.path.join(root, "dists", SUITE)
    path = os.path.join(dists, "main/binary-amd64/Packages")
    if not os.path.isfile(path):
        sys.exit(f"make-scale: {path} missing: build the archive first")
    gen_file = os.path.join(root, ".scale-generation")
    gen = int(open(gen_file).read()) + 1 if os.path.exists(gen_file) else 1
    with open(path, encoding="utf-8") as f:
        stanzas = split_stanzas(f.read())
    step = max(1, round(100 / pct))
    offset = (gen - 1) % step
    pool = PoolWriter(root)
    changed = 0
    for i in range(offset, len(stanzas), step):
        s = stanzas[i]
        fn, ver = field(s, "Filename"), field(s, "Version")
        suffix = f"+b{gen}"
        new_fn = bumped_filename(fn, suffix)
        data = pool_content(new_fn)
        pool.write(new_fn, data)
        stanzas[i] = rewrite_stanza(s, new_fn, data, version=ver + suffix)
        try:
            os.unlink(os.path.join(root, fn))
        except FileNotFoundError:
            pass
        changed += 1
    with open(gen_file, "w") as f:
        f.write(str(gen))
    log(f"generation {gen}: {changed} of {len(stanzas)} stanzas bumped (every {step}th from {offset})")
    finish(root, stanzas, t0)


def finish(root, stanzas, t0):
    written = write_indices(root, "\n\n".join(stanzas) + "\n")
    log(f"indices written ({time.time() - t0:.1f} s)")
    date = write_release(root, written)
    sign(root)
    log(f"Release dated {date} signed ({time.time() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--change", type=float, metavar="PCT")
    a = ap.parse_args()
    root = os.path.abspath(a.dir)
    if a.change is None:
        build(root)
    else:
        if not 0 < a.change <= 100:
            sys.exit("make-scale: --change PCT must be in (0, 100]")
        change(root, a.change)


if __name__ == "__main__":
    main()
