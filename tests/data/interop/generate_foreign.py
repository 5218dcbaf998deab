#!/usr/bin/env python3
"""Regenerate foreign-hashes.tsv: argon2id PHC strings made by three other implementations.

Needs: Debian's `argon2` package (the reference C implementation's CLI), and
`pip install argon2-cffi pynacl` (argon2-cffi wraps the reference libargon2; PyNaCl
bundles libsodium). Run from this folder: python3 generate_foreign.py > foreign-hashes.tsv

Output columns: implementation <TAB> password (JSON string) <TAB> PHC string.
"""
import json
import subprocess

import argon2
import nacl.pwhash

PASSWORDS = [
    "password",
    "correct horse battery staple",
    "a long passphrase for the shop, 2012!",
    "p\u00e4ssw\u00f6rd mit Umlauten",          # precomposed: already NFKC
    "\u30d1\u30b9\u30ef\u30fc\u30c9\u3067\u3059",  # katakana, NFKC-stable
    "emoji \U0001f45f\U0001f462 shoes",
    "",
]


def cli(password, salt, t, m_kib, p, length=32):
    out = subprocess.run(
        ["argon2", salt, "-id", "-t", str(t), "-k", str(m_kib), "-p", str(p), "-l", str(length), "-e"],
        input=password.encode(), capture_output=True, check=True,
    )
    return out.stdout.decode().strip()


rows = []
# The reference implementation's own argon2id test vectors (src/test.c, v=0x13).
rows.append(("argon2-cli", "password", cli("password", "somesalt", 2, 65536, 1)))
rows.append(("argon2-cli", "password", cli("password", "somesalt", 2, 256, 1)))
rows.append(("argon2-cli", "password", cli("password", "somesalt", 2, 256, 2)))
rows.append(("argon2-cli", "differentpassword", cli("differentpassword", "somesalt", 2, 65536, 1)))
rows.append(("argon2-cli", "password", cli("password", "diffsalt", 2, 65536, 1)))
for i, pw in enumerate(PASSWORDS):
    if not pw:
        continue  # the CLI refuses an empty password on stdin
    rows.append(("argon2-cli", pw, cli(pw, f"saltsalt{i:02d}", 2, 19456, 1)))
    rows.append(("argon2-cli", pw, cli(pw, f"saltsalt{i:02d}", 3, 4096, 4, 64)))

for i, pw in enumerate(PASSWORDS):
    h = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    rows.append(("argon2-cffi", pw, h.hash(pw)))
    h = argon2.PasswordHasher(time_cost=3, memory_cost=8192, parallelism=2, hash_len=16, salt_len=8)
    rows.append(("argon2-cffi", pw, h.hash(pw)))

for pw in PASSWORDS:
    # libsodium's interactive limits: t=2, m=64 MiB; and its minimum-ish t=1 at 8 MiB.
    rows.append(("libsodium", pw, nacl.pwhash.argon2id.str(pw.encode(),
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE).decode().rstrip("\x00")))
    rows.append(("libsodium", pw, nacl.pwhash.argon2id.str(pw.encode(),
        opslimit=1, memlimit=8 << 20).decode().rstrip("\x00")))

for impl, pw, phc in rows:
    print(f"{impl}\t{json.dumps(pw)}\t{phc}")
