#!/usr/bin/env python3
"""Known-answer vectors for legacy hash import, made by the real implementations.

- passlib 1.7.4: Django `pbkdf2_sha256`/`pbkdf2_sha1` (its `django_pbkdf2_*` handlers
  write Django's own format), phpass portable `$P$` and phpBB's `$H$`, MD5-crypt `$1$`,
  SHA-crypt `$5$`/`$6$`;
- the `bcrypt` package (pyca, the OpenBSD code): `$2b$`, and `$2y$`/`$2a$` by prefix,
  which PHP's `password_hash` writes and which hash identically;
- WordPress 6.8 `$wp$2y$`: bcrypt over base64(HMAC-SHA-384(key "wp-sha384", password)),
  as `wp_hash_password` computes it;
- ASP.NET Identity v2 and v3, laid out as `PasswordHasher` documents them (marker byte,
  then for v3 the PRF id, iteration count and salt length as big-endian u32), with
  hashlib's PBKDF2;
- Magento 2 legacy rows: `sha256(salt + password):salt:1`.

Writes vectors.tsv: format, password, stored string, then the same stored string checked
against a wrong password must fail (the Rust test does that). Deterministic salts come
from a seeded RNG (bcrypt's too), so the files change only when this script does.
"""
import base64
import hashlib
import hmac
import os
import random
import struct

import bcrypt
from passlib import hash as ph

rng = random.Random(2012)
PASSWORDS = ["correct horse battery staple", "hunter2", "pässwörd ünïcode", "P@ssw0rd!", "x"]
ALNUM = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def salt_chars(n):
    return "".join(rng.choice(ALNUM) for _ in range(n))


BCRYPT64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def bsalt(cost):
    """A bcrypt salt string from the seeded RNG (the last character canonical)."""
    body = "".join(rng.choice(BCRYPT64) for _ in range(21)) + rng.choice(".Oeu")
    return f"$2b${cost:02d}${body}".encode()


def salt_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


rows = []
for pw in PASSWORDS:
    rows.append(("django-pbkdf2-sha256", pw, ph.django_pbkdf2_sha256.using(salt=salt_chars(12).replace(".", "a").replace("/", "b"), rounds=1000).hash(pw)))
    rows.append(("django-pbkdf2-sha1", pw, ph.django_pbkdf2_sha1.using(salt=salt_chars(12).replace(".", "a").replace("/", "b"), rounds=1000).hash(pw)))
    rows.append(("phpass-P", pw, ph.phpass.using(salt=salt_chars(8), rounds=8, ident="P").hash(pw)))
    rows.append(("phpass-H", pw, ph.phpass.using(salt=salt_chars(8), rounds=11, ident="H").hash(pw)))
    rows.append(("md5-crypt", pw, ph.md5_crypt.using(salt=salt_chars(8)).hash(pw)))
    rows.append(("sha256-crypt", pw, ph.sha256_crypt.using(salt=salt_chars(16), rounds=5000).hash(pw)))
    rows.append(("sha512-crypt", pw, ph.sha512_crypt.using(salt=salt_chars(16), rounds=5000).hash(pw)))
    b = bcrypt.hashpw(pw.encode(), bsalt(4)).decode()
    rows.append(("bcrypt-2b", pw, b))
    rows.append(("bcrypt-2y", pw, "$2y$" + b[4:]))
    rows.append(("bcrypt-2a", pw, "$2a$" + b[4:]))
    pre = base64.b64encode(hmac.new(b"wp-sha384", pw.encode(), hashlib.sha384).digest())
    rows.append(("wordpress-bcrypt", pw, "$wp" + bcrypt.hashpw(pre, bsalt(4)).decode().replace("$2b$", "$2y$", 1)))
    s = salt_bytes(16)
    v2 = b"\x00" + s + hashlib.pbkdf2_hmac("sha1", pw.encode(), s, 1000, 32)
    rows.append(("aspnet-v2", pw, base64.b64encode(v2).decode()))
    for prf, name in [(1, "sha256"), (2, "sha512"), (0, "sha1")]:
        s = salt_bytes(16)
        it = 1000 + rng.randrange(1000)
        dk = hashlib.pbkdf2_hmac(name, pw.encode(), s, it, 32)
        v3 = b"\x01" + struct.pack(">III", prf, it, len(s)) + s + dk
        rows.append((f"aspnet-v3-{name}", pw, base64.b64encode(v3).decode()))
    salt = salt_chars(32).replace(".", "q").replace("/", "z")
    rows.append(("magento", pw, hashlib.sha256((salt + pw).encode()).hexdigest() + ":" + salt + ":1"))

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.tsv"), "w", encoding="utf-8") as f:
    for fmt, pw, stored in rows:
        assert "\t" not in pw and "\t" not in stored
        f.write(f"{fmt}\t{pw}\t{stored}\n")
print(len(rows), "vectors")

# realistic.tsv: one row per format at the parameters the platforms write today, for the
# login-cost bench (benches/legacy.rs). Same columns.
pw = "correct horse battery staple"
real = []
real.append(("django-pbkdf2-sha256 (Django 5.2: 1,000,000)", pw, ph.django_pbkdf2_sha256.using(salt="AwiMebbdwBXp", rounds=1_000_000).hash(pw)))
real.append(("django-pbkdf2-sha1 (260,000)", pw, ph.django_pbkdf2_sha1.using(salt="AwiMebbdwBXp", rounds=260_000).hash(pw)))
s = salt_bytes(16)
real.append(("aspnet-v2 (1,000 SHA-1)", pw, base64.b64encode(b"\x00" + s + hashlib.pbkdf2_hmac("sha1", pw.encode(), s, 1000, 32)).decode()))
for prf, name, it in [(1, "sha256", 10_000), (2, "sha512", 100_000)]:
    s = salt_bytes(16)
    dk = hashlib.pbkdf2_hmac(name, pw.encode(), s, it, 32)
    real.append((f"aspnet-v3-{name} ({it:,})", pw, base64.b64encode(b"\x01" + struct.pack(">III", prf, it, 16) + s + dk).decode()))
real.append(("phpass-P (WordPress: 2^8)", pw, ph.phpass.using(salt=salt_chars(8), rounds=8, ident="P").hash(pw)))
real.append(("phpass-H (phpBB: 2^11)", pw, ph.phpass.using(salt=salt_chars(8), rounds=11, ident="H").hash(pw)))
real.append(("bcrypt-2y (PHP: cost 10)", pw, "$2y$" + bcrypt.hashpw(pw.encode(), bsalt(10)).decode()[4:]))
real.append(("bcrypt-2y (Laravel: cost 12)", pw, "$2y$" + bcrypt.hashpw(pw.encode(), bsalt(12)).decode()[4:]))
pre = base64.b64encode(hmac.new(b"wp-sha384", pw.encode(), hashlib.sha384).digest())
real.append(("wordpress-bcrypt (cost 10)", pw, "$wp$2y$" + bcrypt.hashpw(pre, bsalt(10)).decode()[4:]))
real.append(("md5-crypt", pw, ph.md5_crypt.using(salt=salt_chars(8)).hash(pw)))
real.append(("sha256-crypt (5,000)", pw, ph.sha256_crypt.using(salt=salt_chars(16), rounds=5000).hash(pw)))
real.append(("sha512-crypt (5,000)", pw, ph.sha512_crypt.using(salt=salt_chars(16), rounds=5000).hash(pw)))
salt = salt_chars(32).replace(".", "q").replace("/", "z")
real.append(("magento", pw, hashlib.sha256((salt + pw).encode()).hexdigest() + ":" + salt + ":1"))
real.append(("md5 (unsalted)", pw, hashlib.md5(pw.encode()).hexdigest()))
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "realistic.tsv"), "w", encoding="utf-8") as f:
    for fmt, p, stored in real:
        f.write(f"{fmt}\t{p}\t{stored}\n")
print(len(real), "realistic rows")
