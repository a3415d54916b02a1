#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*).

Seeds are valid examples, and a few near misses, in each target's input format (see the
doc comment at the top of each fuzz_targets/*.rs): Socket.IO packets as socket.io-client
4 sends them, and sealed payloads and file chunks from testdata/crypto-vectors.json.
Run from anywhere: python3 fuzz/gen-corpus.py. Deterministic: rerunning changes nothing.
"""

import base64
import json
import re
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
VECTORS = json.loads((FUZZ.parent / "testdata" / "crypto-vectors.json").read_text())


def b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write(target, name, data):
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    (directory / f"seed-{slug}").write_bytes(data)


# ---- protocol_payloads: text frame, then binary frames, separated by 0xFF ----
ROOM = "omSJoNPRAws3-XOnTkTuRw"  # the first vector room's id
FILE = "0123456789abcdef"
BIN = bytes(range(0, 0xFF))  # any bytes but 0xFF, the frame separator
PLACEHOLDER = {"_placeholder": True, "num": 0}


def packet(kind, ack, args, attachments=()):
    body = json.dumps(args, separators=(",", ":"))
    count = f"{len(attachments)}-" if attachments else ""
    return b"\xff".join([f"4{kind}{count}{ack}{body}".encode(), *attachments])


P = "protocol_payloads"
write(P, "join", packet(2, 0, ["join", {"room": ROOM, "profile": "cHJvZmlsZQ"}]))
write(P, "leave", packet(2, 1, ["leave", {"room": ROOM}]))
write(P, "msg", packet(5, 2, ["msg", {"room": ROOM, "data": PLACEHOLDER}], [BIN[:64]]))
write(P, "msg direct", packet(5, 3, ["msg", {"room": ROOM, "data": PLACEHOLDER, "to": "b0Bs0cketId_-123"}], [BIN[:8]]))
write(P, "chunk", packet(5, 4, ["chunk", {"room": ROOM, "file": FILE, "seq": 7, "data": PLACEHOLDER}], [BIN]))
write(P, "chunk without ack", packet(5, "", ["chunk", {"room": ROOM, "file": FILE, "seq": 0, "data": PLACEHOLDER}], [BIN[:16]]))
write(P, "msg data as string", packet(2, 5, ["msg", {"room": ROOM, "data": "AAEC"}]))
write(P, "msg data as numbers", packet(2, 6, ["msg", {"room": ROOM, "data": [1, 2, 3]}]))
write(P, "chunk negative seq", packet(5, 7, ["chunk", {"room": ROOM, "file": FILE, "seq": -1, "data": PLACEHOLDER}], [BIN[:4]]))
write(P, "two attachments", packet(5, 8, ["msg", {"room": ROOM, "data": PLACEHOLDER}, {"_placeholder": True, "num": 1}], [BIN[:4], BIN[4:8]]))
write(P, "nested arrays", packet(2, 9, ["join", [[[[[[[[[[[[[[[[{"room": ROOM}]]]]]]]]]]]]]]]]]))
write(P, "namespace and ack", b"42/admin,12[\"join\",{\"room\":\"" + ROOM.encode() + b"\",\"profile\":\"eA\"}]")
write(P, "raw join json", json.dumps({"room": ROOM, "profile": "cHJvZmlsZQ"}).encode())
write(P, "raw chunk json", json.dumps({"room": ROOM, "file": FILE, "seq": 4294967295, "data": "x"}).encode())
write(P, "engine io ping", b"2probe")

# ---- crypto_open: context byte, then sealed bytes ----
CONTEXTS = [
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("__________________________________________8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("ouV33e9s6FQx-XrdPMlkHr52qiLPKGAi-UuDONoSOZ8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("-_8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_8", "mmmmmmmmmmmmmmmmmmmm-_0123456789012345678901234567890123456789zz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "mé-ü-👋🏽", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("ouV33e9s6FQx-XrdPMlkHr52qiLPKGAi-UuDONoSOZ8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("__________________________________________8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
]
O = "crypto_open"
for v in VECTORS["sealed"]:
    ctx = CONTEXTS.index((v["secret"], v["member"], v["seed"]))
    write(O, f"valid {v['name']}", bytes([ctx]) + b64(v["sealed"]))
    if v["name"] in ("profile", "file", "typing"):
        write(O, f"body {v['name']}", bytes([ctx]) + v["body"].encode())
# One refused payload of each kind: tampered, bad signature, bad format.
for v in VECTORS["invalid"]:
    if v["name"] in ("flipped tag byte", "wrong member (re-attributed by the server)",
                     "valid encryption, signature by another key", "bad version byte 0x02",
                     "too short: authentic, but no room for a signature"):
        write(O, f"invalid {v['name']}", bytes([0]) + b64(v["sealed"]))
room = VECTORS["rooms"][0]
write(O, "invite link", bytes([0]) + f"https://chat.example/#{room['link_fragment']}".encode())
write(O, "public key", bytes([0]) + VECTORS["identities"][0]["public_key"].encode())

# ---- crypto_chunks: file choice, flags, [manifest], then (seq u32, len u16, bytes)* ----
C = "crypto_chunks"


def records(chunks):
    return b"".join(struct.pack("<IH", seq, len(data)) + data for seq, data in chunks)


for i, f in enumerate(VECTORS["files"]):
    chunks = [b64(c) for c in f["chunks"]]
    write(C, f"valid {f['name']}", bytes([i, 0]) + records(enumerate(chunks)))
    if len(chunks) > 1:
        write(C, f"reordered {f['name']}", bytes([i, 0]) + records([(1, chunks[1]), (0, chunks[0])] + list(enumerate(chunks))[1:]))
        write(C, f"truncated {f['name']}", bytes([i, 0]) + records(list(enumerate(chunks))[:-1]))
    size = len(b64(f["plaintext"]))
    count = max(1, -(-size // f["chunk_size"]))
    write(C, f"own manifest {f['name']}", bytes([i, 1]) + struct.pack("<IHH", size, f["chunk_size"], count) + records(enumerate(chunks)))
