#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*).

Seeds are valid examples, and a few near misses, in each target's input format (see the
doc comment at the top of each fuzz_targets/*.rs): Socket.IO packets as socket.io-client
4 sends them, HTTP requests and polling bodies, WebSocket frames, what other nodes write
to Redis and Kafka, what the server sends to a client, and sealed payloads and file
chunks from testdata/crypto-vectors.json (sealed anew, where a seed needs it, with
scripts/gen-crypto-vectors.py's own implementation of docs/crypto.md).
Run from anywhere: python3 fuzz/gen-corpus.py (needs the `cryptography` package, as the
vector generator does). Deterministic: rerunning changes nothing.
"""

import base64
import importlib.util
import json
import re
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
VECTORS = json.loads((FUZZ.parent / "testdata" / "crypto-vectors.json").read_text())

_spec = importlib.util.spec_from_file_location("vectors", FUZZ.parent / "scripts" / "gen-crypto-vectors.py")
V = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(V)


def b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


WRITTEN = set()


def write(target, name, data):
    directory = FUZZ / "corpus" / target
    if target not in WRITTEN:
        # Seeds only: a seed that is no longer written is no longer kept.
        for old in directory.glob("seed-*"):
            old.unlink()
        WRITTEN.add(target)
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
write(P, "resume", packet(2, 10, ["resume", {"room": ROOM, "member": "b0Bs0cketId_-123", "token": "dG9rZW4tMTIzNDU2Nzg5MA", "epoch": "0123456789abcdef", "pos": 42}]))
write(P, "join since", packet(2, 11, ["join", {"room": ROOM, "profile": "cHJvZmlsZQ", "since": {"epoch": "0123456789abcdef", "pos": 7}}]))
write(P, "msg with client id", packet(5, 12, ["msg", {"room": ROOM, "data": PLACEHOLDER, "id": "AbCdEfGhIjKlMnOp-1"}], [BIN[:32]]))
write(P, "msg direct with client id", packet(5, 13, ["msg", {"room": ROOM, "data": PLACEHOLDER, "to": "b0Bs0cketId_-123", "id": "x"}], [BIN[:8]]))
write(P, "connect with recovery", b'40{"pid":"AbCdEfGhIjKlMnOpQrStUv","offset":"12"}')
write(P, "connect", b"40")
write(P, "raw resume json", json.dumps({"room": ROOM, "member": "m", "token": "t", "epoch": "e", "pos": 1}).encode())

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

# ---- engineio_request: [method and peer, proxy list], query, then X-Forwarded-For lines ----
E = "engineio_request"
GET, POST = 0, 1
V4_PROXY, V6_PROXY, MAPPED_PROXY, CLIENT = 0, 2, 4, 6  # peer choice, in bits 1-2
NO_PROXIES, ONE_PROXY, NETWORKS, EVERYONE = 0, 1, 2, 3
SID = "AAAAAAAAAAAAAAHs"


def request(how, which, query, *forwarded):
    return bytes([how, which]) + b"\n".join([query.encode(), *[f.encode() for f in forwarded]])


write(E, "polling handshake", request(GET | CLIENT, NO_PROXIES, "EIO=4&transport=polling&t=PXyz0aB"))
write(E, "websocket handshake", request(GET | CLIENT, NO_PROXIES, "EIO=4&transport=websocket"))
write(E, "websocket upgrade with sid", request(GET | V4_PROXY, ONE_PROXY, f"EIO=4&transport=websocket&sid={SID}", "198.51.100.4"))
write(E, "polling post behind proxy", request(POST | V4_PROXY, NETWORKS, f"EIO=4&transport=polling&sid={SID}", "203.0.113.9, 10.0.0.2"))
write(E, "ipv6 proxy", request(GET | V6_PROXY, NETWORKS, "EIO=4&transport=polling", "2001:db8::1"))
write(E, "mapped proxy", request(GET | MAPPED_PROXY, NETWORKS, "EIO=4&transport=polling", "198.51.100.1"))
write(E, "untrusted client forwards", request(GET | CLIENT, ONE_PROXY, "EIO=4&transport=polling", "127.0.0.1"))
write(E, "everyone trusted", request(GET | CLIENT, EVERYONE, "EIO=4&transport=polling", "::ffff:192.0.2.1", "192.0.2.2"))
write(E, "two forwarded headers", request(GET | V4_PROXY, ONE_PROXY, "EIO=4&transport=polling", "192.0.2.7", "192.0.2.8,  192.0.2.9 "))
write(E, "bad sid", request(GET | CLIENT, NO_PROXIES, "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAA!"))
write(E, "engine io v3", request(GET | CLIENT, NO_PROXIES, "EIO=3&transport=polling&b64=1"))
write(E, "garbage forwarded", request(GET | V4_PROXY, ONE_PROXY, "EIO=4&transport=polling", "unknown, [::1]:80, 300.1.1.1"))

# ---- polling_payload: [chunk size, limit], then the body (v4: 0x1e between packets) ----
L = "polling_payload"
SEP = b"\x1e"


def body(*packets):
    return SEP.join(packets)


def b64std(data):
    return base64.b64encode(data)


# Socket.IO packets; an Engine.IO message is `4` and one of them.
join_text = b'2["join",{"room":"' + ROOM.encode() + b'","profile":"cHJvZmlsZQ"}]'
msg_header = b'51-["msg",{"room":"' + ROOM.encode() + b'","data":{"_placeholder":true,"num":0}}]'
write(L, "connect", bytes([0, 0]) + b"40")
write(L, "join and pong", bytes([0, 0]) + body(b"4" + join_text, b"3"))
write(L, "binary msg", bytes([0, 0]) + body(b"4" + msg_header, b"b" + b64std(BIN[:64])))
write(L, "binary msg in small reads", bytes([3, 0]) + body(b"4" + msg_header, b"b" + b64std(BIN[:20])))
write(L, "utf8 across reads", bytes([5, 0]) + body('42["msg","é👋 Grüße"]'.encode()))
write(L, "over a small limit", bytes([0, 40]) + body(b"4" + join_text, b"2"))
write(L, "close", bytes([0, 0]) + body(b"40", b"1", b"42[]"))
write(L, "bad base64", bytes([0, 0]) + body(b"4" + msg_header, b"b!!!"))
write(L, "upgrade packet", bytes([0, 0]) + b"5")

# ---- websocket_frames: [read size], then what the client sends (masked frames) ----
W = "websocket_frames"
MASK = bytes([0x12, 0x34, 0x56, 0x78])


def ws_frame(opcode, payload, fin=True, mask=MASK, rsv=0):
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0
write(W, "text", bytes([0]) + ws_frame(TEXT, b"4" + join_text))
write(W, "binary msg", bytes([0]) + ws_frame(TEXT, b"4" + msg_header) + ws_frame(BINARY, BIN[:64]))
write(W, "probe and upgrade", bytes([0]) + ws_frame(TEXT, b"2probe") + ws_frame(TEXT, b"5"))
write(W, "fragmented text", bytes([0]) + ws_frame(TEXT, b'42["msg",', fin=False) + ws_frame(PING, b"hi") + ws_frame(CONT, b'"x"]'))
write(W, "utf8 split across fragments", bytes([0]) + ws_frame(TEXT, "é".encode()[:1], fin=False) + ws_frame(CONT, "é".encode()[1:] + "👋".encode()))
write(W, "ping pong close", bytes([0]) + ws_frame(PING, b"") + ws_frame(PONG, b"x") + ws_frame(CLOSE, struct.pack(">H", 1000) + b"bye"))
write(W, "one byte reads", bytes([1]) + ws_frame(TEXT, b"42[]") + ws_frame(BINARY, BIN[:200]))
# The header (2 bytes and the mask) in one read, its payload in the next.
write(W, "payload after a pause", bytes([6]) + ws_frame(TEXT, b"40") + ws_frame(BINARY, b"\x00\x01"))
write(W, "seven byte reads", bytes([7]) + ws_frame(BINARY, BIN[:300]) + ws_frame(TEXT, b"3"))
write(W, "unmasked", bytes([0]) + ws_frame(TEXT, b"42[]", mask=None))
write(W, "reserved bits", bytes([0]) + ws_frame(TEXT, b"42[]", rsv=0x40))
write(W, "huge length", bytes([0]) + bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 62) + MASK + b"abc")
write(W, "over the limit", bytes([0]) + bytes([0x82, 0xFF]) + struct.pack(">Q", 1024 * 1024 + 64 * 1024 + 1) + MASK)
write(W, "bad utf8", bytes([0]) + ws_frame(TEXT, b"\xc3\x28"))

# ---- cluster_events: [mode], then a bus event, a log entry or a log script reply ----
K = "cluster_events"


def mp(value):
    """MessagePack as rmp_serde writes it (named fields; ints in their smallest form)."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        for tag, fmt, top in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16), (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
            if 0 <= value < top:
                return bytes([tag]) + struct.pack(fmt, value)
        raise ValueError(value)
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        return b"\xd9" + bytes([len(raw)]) + raw if len(raw) < 256 else b"\xda" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, bytes):
        return (b"\xc4" + bytes([len(value)]) if len(value) < 256 else b"\xc5" + struct.pack(">H", len(value))) + value
    if isinstance(value, dict):
        assert len(value) < 16
        return bytes([0x80 | len(value)]) + b"".join(mp(k) + mp(v) for k, v in value.items())
    raise TypeError(value)


NODE_MEMBER = "b0Bs0cketId_-123"
SEALED = b64(VECTORS["sealed"][0]["sealed"])
BUS = {
    "msg": {"t": "msg", "e": {"room": ROOM, "from": NODE_MEMBER, "ts": 1767225600000, "data": SEALED, "pos": 5}},
    "direct msg": {"t": "msg", "e": {"room": ROOM, "from": NODE_MEMBER, "ts": 1767225600000, "data": SEALED[:40], "to": "Xa9_kLm2-QrS4tUv6wYz", "pos": 6}},
    "chunk": {"t": "chunk", "e": {"room": ROOM, "from": NODE_MEMBER, "file": FILE, "seq": 3, "data": BIN[:100], "pos": 7}},
    "join": {"t": "presence", "e": {"kind": "join", "room": ROOM, "member": NODE_MEMBER, "at": 1767225600000, "profile": "cHJvZmlsZQ", "pos": 1}},
    "leave": {"t": "presence", "e": {"kind": "leave", "room": ROOM, "member": NODE_MEMBER, "at": 1767225600000, "reason": "timeout", "pos": 8}},
    "away": {"t": "presence", "e": {"kind": "away", "room": ROOM, "member": NODE_MEMBER, "at": 1767225600000, "pos": 9}},
}


def bus_event(event, node="node-a1b2", epoch="9f8e7d6c5b4a3921", counted=True):
    return mp({"node": node, "room": ROOM, "event": event, "epoch": epoch, "counted": counted})


def u16(n):
    return struct.pack("<H", n)


def rstr(text):  # a reply string value
    raw = text.encode()
    return bytes([0]) + u16(len(raw)) + raw


def rint(n):  # a reply integer value
    return bytes([2]) + struct.pack("<q", n)


def rbytes(data):
    return bytes([1]) + u16(len(data)) + data


for name, event in BUS.items():
    write(K, f"bus {name}", bytes([0]) + bus_event(event))
write(K, "bus unplaced", bytes([0]) + bus_event(BUS["msg"], epoch="", counted=False))
write(K, "log entry", bytes([1]) + u16(3) + b"5-0" + rint(1767225600000) + bus_event(BUS["msg"], epoch=""))
write(K, "log entry time as text", bytes([1]) + u16(4) + b"12-3" + rstr("1767225600001") + bus_event(BUS["chunk"], epoch=""))
EPOCH = "9f8e7d6c5b4a3921"


def stored(node, at, profile="cHJvZmlsZQ"):
    return json.dumps({"node": node, "at": at, "profile": profile}, separators=(",", ":"))


def reply(kind, *values):
    return bytes([2, ["event", "admit", "away", "remove", "resume", "other"].index(kind)]) + b"".join(values)


write(K, "reply event ok", reply("event", rstr("ok"), rstr(EPOCH), rint(5), rint(1767225600000)))
write(K, "reply event dup", reply("event", rstr("dup"), rstr(EPOCH), rint(3), rint(1767225600000)))
write(K, "reply full", reply("admit", rstr("full")))
write(K, "reply refused", reply("resume", rstr("refused")))
write(K, "reply admit", reply("admit", rstr("ok"), rstr(EPOCH), rint(2), rint(1767225600000),
                               rstr("Xa9_kLm2-QrS4tUv6wYz"), rstr(stored("node-b", 1767225500000)),
                               rstr(NODE_MEMBER), rstr(stored("node-a1b2", 1767225600000)),
                               rbytes(b"odd"), rstr("not json")))
write(K, "reply resume", reply("resume", rstr("ok"), rstr(EPOCH), rint(4), rint(1767225600000),
                                rstr(stored("node-a1b2", 1767225400000)),
                                rstr(NODE_MEMBER), rstr(stored("node-a1b2", 1767225400000))))
write(K, "reply remove", reply("remove", rstr("ok"), rstr(EPOCH), rint(9), rint(1767225600000)))

# ---- client_events: frames from the server (kind: 0 text, 1 binary; u16 LE length) ----
CE = "client_events"
SECRET0 = bytes(range(32))
ROOM0 = VECTORS["rooms"][0]["room_id"]
ADA, ADA_SEED = "Xa9_kLm2-QrS4tUv6wYz", b64("M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg")
BOB, BOB_SEED = "b0Bs0cketId_-123456A", b64("P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0")
ME = "selfSocketId00000001"
assert ROOM0 == ROOM


def sealed_for(member, seed, body, iv_label):
    return V.seal(SECRET0, member, V.identity(seed), body, V.fixed(iv_label, 12))[3]


def profile_of(member, seed, name):
    key = V.b64u(V.public_bytes(V.identity(seed)))
    body = json.dumps({"type": "profile", "name": name, "key": key, "sent_at": 1767225600000},
                      ensure_ascii=False, separators=(",", ":")).encode()
    return V.b64u(sealed_for(member, seed, body, f"profile {member}"))


def text_frame(text):
    raw = text.encode()
    return bytes([0]) + u16(len(raw)) + raw


def bin_frame(data):
    return bytes([1]) + u16(len(data)) + data


def event(name, payload, *attachments):
    body = json.dumps([name, payload], ensure_ascii=False, separators=(",", ":"))
    if attachments:
        return text_frame(f"45{len(attachments)}-{body}") + b"".join(bin_frame(a) for a in attachments)
    return text_frame(f"42{body}")


def presence(kind, member, pos, **extra):
    return event("presence", {"kind": kind, "room": ROOM0, "member": member, "at": 1767225600000 + pos, "pos": pos, **extra})


def msg(sender, data, pos, **extra):
    return event("msg", {"room": ROOM0, "from": sender, "ts": 1767225600000 + pos, "data": PLACEHOLDER, "pos": pos, **extra}, data)


def chunk(sender, file_id, seq, data, pos):
    return event("chunk", {"room": ROOM0, "from": sender, "file": file_id, "seq": seq, "data": PLACEHOLDER, "pos": pos}, data)


ADA_JOINS = presence("join", ADA, 1, profile=profile_of(ADA, ADA_SEED, "Ada Lovelace"))
BOB_JOINS = presence("join", BOB, 2, profile=profile_of(BOB, BOB_SEED, "Zoë 🦀\u202e"))
by_name = {v["name"]: v for v in VECTORS["sealed"]}
TEXT_FROM_ADA = b64(by_name["text with non-ASCII and emoji"]["sealed"])
TYPING_FROM_BOB = b64(by_name["typing"]["sealed"])
file_vector = VECTORS["files"][0]
FILE_BODY = by_name["file"]["body"].encode()
FILE_ID = json.loads(FILE_BODY)["id"]
FILE_OFFER = sealed_for(ADA, ADA_SEED, FILE_BODY, "file offer")
FILE_CHUNKS = [b64(c) for c in file_vector["chunks"]]
assert json.loads(FILE_BODY)["chunks"] == len(FILE_CHUNKS)

write(CE, "join and text", ADA_JOINS + msg(ADA, TEXT_FROM_ADA, 3) + text_frame("2"))
write(CE, "typing and direct text", ADA_JOINS + BOB_JOINS + msg(BOB, TYPING_FROM_BOB, 3) + msg(ADA, TEXT_FROM_ADA, 4, to=ME))
write(CE, "file transfer", ADA_JOINS + msg(ADA, FILE_OFFER, 2) + b"".join(chunk(ADA, FILE_ID, i, c, 3 + i) for i, c in enumerate(FILE_CHUNKS)))
write(CE, "file out of order", ADA_JOINS + msg(ADA, FILE_OFFER, 2) + chunk(ADA, FILE_ID, 1, FILE_CHUNKS[1], 3)
      + chunk(ADA, FILE_ID, 0, FILE_CHUNKS[0], 4) + chunk(ADA, FILE_ID, 2, FILE_CHUNKS[2], 5) + chunk(ADA, FILE_ID, 2, FILE_CHUNKS[2], 6))
write(CE, "presence", ADA_JOINS + BOB_JOINS + presence("away", BOB, 3) + presence("back", BOB, 4)
      + presence("leave", ADA, 5, reason="timeout") + presence("leave", BOB, 6, reason="server_restart"))
tampered = bytearray(TEXT_FROM_ADA)
tampered[40] ^= 1
write(CE, "replay and tamper", ADA_JOINS + msg(ADA, TEXT_FROM_ADA, 3) + msg(ADA, TEXT_FROM_ADA, 4) + msg(ADA, bytes(tampered), 5)
      + msg(BOB, TEXT_FROM_ADA, 6) + msg(ADA, TEXT_FROM_ADA, 2))
write(CE, "profile for someone else", presence("join", BOB, 1, profile=profile_of(ADA, ADA_SEED, "Ada")))
write(CE, "notices and acks", event("notice", {"code": "shutting_down", "message": "bye"})
      + event("notice", {"code": "rate_limited", "message": "slow"})
      + text_frame('431[{"ok":true,"ts":1767225600000,"pos":3}]')
      + text_frame('432[{"ok":false,"error":{"code":"room_full","message":"room is full"}}]')
      + text_frame("430" + json.dumps([{"ok": True, "member": ME, "at": 1, "members": [{"member": ADA, "at": 0, "profile": "cHJvZmlsZQ"}],
                                       "limits": {"max_message_bytes": 65536, "max_chunk_bytes": 1048576, "max_file_chunks": 256,
                                                  "max_file_bytes": 268435456, "max_members_per_room": 1000},
                                       "epoch": "e", "pos": 1, "token": "dG9r", "grace_ms": 1000, "window_ms": 1000}]))
      + text_frame("41") + text_frame("1"))
write(CE, "binary ack", text_frame('461-3[{"ok":true,"data":{"_placeholder":true,"num":0}}]') + bin_frame(b"\x00\x01"))

# ---- client_links: the link as text ----
CL = "client_links"
FRAGMENT = VECTORS["rooms"][0]["link_fragment"]
write(CL, "local", f"http://127.0.0.1:8000/#{FRAGMENT}".encode())
write(CL, "https with path", f"  https://chat.example/app/#{FRAGMENT}\n".encode())
write(CL, "no server", f"#{FRAGMENT}".encode())
write(CL, "bare fragment", FRAGMENT.encode())
write(CL, "other scheme", f"ftp://x/#{FRAGMENT}".encode())
write(CL, "damaged fragment", f"http://h/#{FRAGMENT[:-1]}A".encode())
write(CL, "two fragments", f"http://h/#x#{FRAGMENT}".encode())
