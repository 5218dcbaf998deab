#!/usr/bin/env python3
"""Check that shopsafe's PHC strings verify in other implementations.

Feeds passwords to shopsafe's `hash_password` example (path given as the first argument),
reads back one PHC string per password, and verifies each in argon2-cffi (the reference
libargon2, the same code as Debian's `argon2` CLI) and in libsodium (PyNaCl). A wrong
password must be refused by both. Prints "N passed, N failed" and exits non-zero on any
failure. Needs: pip install argon2-cffi pynacl
"""
import subprocess
import sys

import argon2
import nacl.exceptions
import nacl.pwhash

PASSWORDS = [
    "password",
    "correct horse battery staple",
    "a long passphrase for the shop, 2012!",
    "p\u00e4ssw\u00f6rd mit Umlauten",
    "\u30d1\u30b9\u30ef\u30fc\u30c9\u3067\u3059",
    "emoji \U0001f45f\U0001f462 shoes",
    "x" * 200,
]


def check(name, fn):
    try:
        return bool(fn())
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError,
            nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError):
        return False


def main():
    binary = sys.argv[1]
    run = subprocess.run([binary], input="\n".join(PASSWORDS) + "\n", capture_output=True,
                         text=True, check=True)
    hashes = run.stdout.splitlines()
    assert len(hashes) == len(PASSWORDS), run.stderr
    cffi = argon2.PasswordHasher()
    passed = failed = 0
    for pw, phc in zip(PASSWORDS, hashes):
        enc = phc.encode()
        results = {
            "argon2-cffi accepts": check("cffi", lambda: cffi.verify(phc, pw)),
            "libsodium accepts": check("sodium", lambda: nacl.pwhash.argon2id.verify(enc, pw.encode())),
            "argon2-cffi refuses wrong": not check("cffi", lambda: cffi.verify(phc, pw + "!")),
            "libsodium refuses wrong": not check("sodium", lambda: nacl.pwhash.argon2id.verify(enc, (pw + "!").encode())),
        }
        for what, ok in results.items():
            if ok:
                passed += 1
            else:
                failed += 1
                print(f"FAIL {what}: {phc}", file=sys.stderr)
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
