#!/usr/bin/env python3
"""Makes the Pwned Passwords test data, in the published formats, with Python's hashlib
(an implementation independent of the crate's SHA-1).

- passwords.tsv: 3,000 known passwords and the count each gets (tab-separated);
- ordered-by-hash.txt: the "whole hash" form, `<40 HEX>:<count>` sorted by hash, CRLF
  line ends, holding those 3,000 plus 3,000 random filler hashes and 300 padding lines
  (count 0, as the range API's padding).

The tests split ordered-by-hash.txt into range files (`XXXXX.txt`, `<35 HEX>:<count>`)
themselves. Deterministic: the same output on every run.
"""
import hashlib
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(20121)  # fixed seed

passwords = []
for i in range(1500):
    passwords.append(f"shopsafe-breached-{i:04d}")
words = ["winter", "summer", "liverpool", "dragon", "monkey", "shadow", "sunshine", "princess"]
for i in range(1500):
    passwords.append(f"{rng.choice(words)}{rng.randrange(100000)}!{i}")
passwords.append("password")
passwords = list(dict.fromkeys(passwords))[:3000]

lines = {}
with open(os.path.join(HERE, "passwords.tsv"), "w", encoding="utf-8") as f:
    for p in passwords:
        count = rng.randrange(1, 5_000_000)
        h = hashlib.sha1(p.encode("utf-8")).hexdigest().upper()
        lines[h] = count
        f.write(f"{p}\t{count}\n")
for _ in range(3000):
    lines[rng.getrandbits(160).to_bytes(20, "big").hex().upper()] = rng.randrange(1, 1000)
for _ in range(300):
    h = rng.getrandbits(160).to_bytes(20, "big").hex().upper()
    lines.setdefault(h, 0)
with open(os.path.join(HERE, "ordered-by-hash.txt"), "w", newline="") as f:
    for h in sorted(lines):
        f.write(f"{h}:{lines[h]}\r\n")
print(len(passwords), "passwords,", len(lines), "lines")
