#!/usr/bin/env python3
"""Write testdata/crypto-vectors.json: the StreamChat v1 end-to-end encryption vectors.

This is a third, independent implementation of docs/crypto.md (StreamChat E2EE v1),
built only on the Python `cryptography` package, so that the Rust crate
(crates/crypto) and the web client can both be checked against bytes that neither
of them produced. Every input is fixed: running it twice writes the same file.

Usage:  pip install cryptography && python3 scripts/gen-crypto-vectors.py [OUT]
        (OUT defaults to testdata/crypto-vectors.json next to this script's repo root)

Before writing, the script opens every vector again with its own `open_sealed`
and checks that each invalid vector fails in the way it claims to.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# --- The construction (docs/crypto.md §1-§9), nothing more -------------------------

DOMAIN = b"streamchat/v1"
SIG_DOMAIN = b"streamchat/v1/sig"
CHUNK_AAD = b"streamchat/v1/chunk"
VERSION = 0x01
IV_LEN = 12
TAG_LEN = 16
SIG_LEN = 64
MAX_MEMBER_LEN = 64
# version + iv + tag + signature: the shortest sealed payload (an empty body).
MIN_SEALED_LEN = 1 + IV_LEN + TAG_LEN + SIG_LEN


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hkdf(secret: bytes, info: bytes, length: int, salt: bytes = DOMAIN) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


# v2 rooms (docs/crypto.md §17.1): the link's prefix and the derivation's salt per kind.
V2_KINDS = {"knock": ("2.", b"streamchat/v2"), "open": ("2o.", b"streamchat/v2/open")}


def v2_room(secret: bytes, kind: str) -> dict:
    prefix, salt = V2_KINDS[kind]
    return {
        "link_fragment": prefix + b64u(secret),
        "room_id": b64u(hkdf(secret, b"room-id", 16, salt)),
        "lobby_key": b64u(hkdf(secret, b"message-key", 32, salt)),
    }


def room_id(secret: bytes) -> bytes:
    return hkdf(secret, b"room-id", 16)


def message_key(secret: bytes) -> bytes:
    return hkdf(secret, b"message-key", 32)


def member_field(member: str) -> bytes:
    raw = member.encode("utf-8")
    assert 0 < len(raw) <= MAX_MEMBER_LEN, member
    return bytes([len(raw)]) + raw


def aad_for(secret: bytes, member: str) -> bytes:
    return DOMAIN + room_id(secret) + member_field(member)


def signed_for(secret: bytes, member: str, body: bytes) -> bytes:
    return SIG_DOMAIN + room_id(secret) + member_field(member) + body


def identity(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )


def fingerprint(public_key: bytes) -> str:
    digest = hashlib.sha256(public_key).hexdigest()[:20]
    return " ".join(digest[i : i + 4] for i in range(0, 20, 4))


def seal(secret: bytes, member: str, signer: Ed25519PrivateKey, body: bytes, iv: bytes):
    """Returns (aad, signed, signature, sealed)."""
    assert len(iv) == IV_LEN
    aad = aad_for(secret, member)
    signed = signed_for(secret, member, body)
    signature = signer.sign(signed)
    ciphertext = AESGCM(message_key(secret)).encrypt(iv, signature + body, aad)
    return aad, signed, signature, bytes([VERSION]) + iv + ciphertext


class OpenError(Exception):
    """`kind` is one of the vector error classes: decrypt, signature, format."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def open_sealed(secret: bytes, member: str, public_key: bytes, sealed: bytes) -> bytes:
    """The receiver's side, used only to check the vectors before writing them."""
    if len(sealed) < MIN_SEALED_LEN:
        raise OpenError("format")
    if sealed[0] != VERSION:
        raise OpenError("format")
    iv, ciphertext = sealed[1 : 1 + IV_LEN], sealed[1 + IV_LEN :]
    try:
        plaintext = AESGCM(message_key(secret)).decrypt(iv, ciphertext, aad_for(secret, member))
    except InvalidTag:
        raise OpenError("decrypt") from None
    signature, body = plaintext[:SIG_LEN], plaintext[SIG_LEN:]
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, signed_for(secret, member, body)
        )
    except InvalidSignature:
        raise OpenError("signature") from None
    return body


def chunk_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    assert len(prefix) == 7
    return prefix + index.to_bytes(4, "big") + bytes([1 if last else 0])


def encrypt_file(file_key: bytes, prefix: bytes, chunk_size: int, plaintext: bytes) -> list[bytes]:
    """STREAM: ceil(len/chunk_size) chunks, the last one flagged; an empty file is
    one final empty chunk. An exact multiple has no trailing empty chunk."""
    count = max(1, math.ceil(len(plaintext) / chunk_size))
    aead = AESGCM(file_key)
    chunks = []
    for index in range(count):
        piece = plaintext[index * chunk_size : (index + 1) * chunk_size]
        nonce = chunk_nonce(prefix, index, index == count - 1)
        chunks.append(aead.encrypt(nonce, piece, CHUNK_AAD))
    return chunks


# --- Fixed inputs ---------------------------------------------------------------------


def fixed(label: str, length: int) -> bytes:
    """Deterministic test bytes: SHA-256 of a label, repeated as needed."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{label}#{counter}".encode()).digest()
        counter += 1
    return out[:length]


ROOM_SECRETS = [
    bytes(range(32)),
    bytes([0xFF] * 32),
    fixed("streamchat test room secret 3", 32),
    # Starts and ends with bytes that encode to '-' and '_' in base64url, so a
    # decoder that accepts only standard base64 fails visibly.
    bytes.fromhex("fbff" + "00" * 28 + "fbff"),
]

IDENTITY_SEEDS = [
    fixed("streamchat test identity alice", 32),
    fixed("streamchat test identity bob", 32),
    bytes(32),
]

SENT_AT = 1767225600000  # 2026-01-01T00:00:00Z in Unix ms

# Socket.IO socket ids are 20 characters of base64url.
MEMBER_ALICE = "Xa9_kLm2-QrS4tUv6wYz"
MEMBER_BOB = "b0Bs0cketId_-123456A"
MEMBER_64 = "m" * 20 + "-_" + "0123456789" * 4 + "zz"
# Not a Socket.IO id, but the layout counts UTF-8 bytes: 7 code points, 9 UTF-16 units, 15 bytes.
MEMBER_NON_ASCII = "mé-ü-👋🏽"

FILES = [
    # (name, chunk_size, plaintext)
    ("three chunks, last short", 16, fixed("file plaintext 40", 40)),
    ("exact multiple of chunk size", 16, fixed("file plaintext 32", 32)),
    ("single chunk", 64, b"hello, file\n"),
    ("empty file", 16, b""),
    ("five chunks of 1 KiB, last short", 1024, fixed("file plaintext 4500", 4500)),
]


def body_json(obj: dict) -> bytes:
    """Compact JSON, non-ASCII kept as UTF-8: the exact bytes that are signed."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build() -> dict:
    assert len(MEMBER_64.encode()) == 64
    assert len(MEMBER_NON_ASCII) != len(MEMBER_NON_ASCII.encode())

    rooms = [
        {
            "secret": b64u(s),
            "link_fragment": b64u(s),
            "room_id": b64u(room_id(s)),
            "message_key": b64u(message_key(s)),
            "v2": {kind: v2_room(s, kind) for kind in V2_KINDS},
        }
        for s in ROOM_SECRETS
    ]
    for room in rooms:
        assert len(room["secret"]) == 43 and len(room["room_id"]) == 22

    keys = [identity(seed) for seed in IDENTITY_SEEDS]
    identities = [
        {
            "seed": b64u(seed),
            "public_key": b64u(public_bytes(key)),
            "fingerprint": fingerprint(public_bytes(key)),
        }
        for seed, key in zip(IDENTITY_SEEDS, keys)
    ]

    files = []
    for index, (name, chunk_size, plaintext) in enumerate(FILES):
        file_key = fixed(f"file key {index}", 32)
        prefix = fixed(f"nonce prefix {index}", 7)
        chunks = encrypt_file(file_key, prefix, chunk_size, plaintext)
        files.append(
            {
                "name": name,
                "file_key": b64u(file_key),
                "nonce_prefix": b64u(prefix),
                "chunk_size": chunk_size,
                "plaintext": b64u(plaintext),
                "sha256": b64u(hashlib.sha256(plaintext).digest()),
                "chunks": [b64u(c) for c in chunks],
            }
        )

    alice, bob = keys[0], keys[1]
    # A message reference (docs/crypto.md §8): the author's public key and the body's sent_at.
    alice_text = {"key": b64u(public_bytes(alice)), "sent_at": SENT_AT + 2}
    first_file = FILES[0]
    bodies = [
        # (name, secret, member, signer index, body)
        (
            "profile",
            ROOM_SECRETS[0],
            MEMBER_ALICE,
            0,
            body_json(
                {
                    "type": "profile",
                    "name": "Ada Lovelace",
                    "key": b64u(public_bytes(alice)),
                    "sent_at": SENT_AT,
                }
            ),
        ),
        (
            "profile with non-ASCII name",
            ROOM_SECRETS[1],
            MEMBER_BOB,
            1,
            body_json(
                {
                    "type": "profile",
                    "name": "Zoë 🦀",
                    "key": b64u(public_bytes(bob)),
                    "sent_at": SENT_AT + 1,
                }
            ),
        ),
        (
            "text with non-ASCII and emoji",
            ROOM_SECRETS[0],
            MEMBER_ALICE,
            0,
            body_json(
                {
                    "type": "text",
                    "text": "Grüße, 世界! 👋🏽 Ünïcödé — \"quoted\" \\ and\nnewline",
                    "sent_at": SENT_AT + 2,
                }
            ),
        ),
        (
            "file",
            ROOM_SECRETS[2],
            MEMBER_BOB,
            1,
            body_json(
                {
                    "type": "file",
                    "id": b64u(fixed("file id 0", 12)),  # 16 chars, as protocol.md asks
                    "name": "notes.bin",
                    "mime": "application/octet-stream",
                    "size": len(first_file[2]),
                    "chunk_size": first_file[1],
                    "chunks": len(files[0]["chunks"]),
                    "sha256": files[0]["sha256"],
                    "key": files[0]["file_key"],
                    "nonce_prefix": files[0]["nonce_prefix"],
                    "sent_at": SENT_AT + 3,
                }
            ),
        ),
        (
            "typing",
            ROOM_SECRETS[0],
            MEMBER_BOB,
            1,
            body_json({"type": "typing", "sent_at": SENT_AT + 4}),
        ),
        (
            "64-byte member id",
            ROOM_SECRETS[3],
            MEMBER_64,
            0,
            body_json({"type": "text", "text": "max-length member id", "sent_at": SENT_AT + 5}),
        ),
        (
            "non-ASCII member id (length prefix counts UTF-8 bytes)",
            ROOM_SECRETS[0],
            MEMBER_NON_ASCII,
            1,
            body_json({"type": "text", "text": "hi", "sent_at": SENT_AT + 9}),
        ),
        (
            "empty text",
            ROOM_SECRETS[2],
            MEMBER_ALICE,
            0,
            body_json({"type": "text", "text": "", "sent_at": SENT_AT + 6}),
        ),
        (
            "unknown type and unknown fields (receivers ignore, signature still valid)",
            ROOM_SECRETS[1],
            MEMBER_ALICE,
            0,
            body_json(
                {"type": "poll", "emoji": "👍", "sent_at": SENT_AT + 7, "extra": {"a": [1]}}
            ),
        ),
        (
            "text with unknown extra field and field order not canonical",
            ROOM_SECRETS[0],
            MEMBER_ALICE,
            0,
            b'{"sent_at":1767225600008,"text":"order kept","type":"text","future":true}',
        ),
        # Replies, reactions, edits and deletions (docs/crypto.md §8) name the message they
        # are about by its author's key and its sent_at: here Alice's "text with non-ASCII
        # and emoji" above (room 0, SENT_AT + 2).
        (
            "reply: a text with reply_to and quote",
            ROOM_SECRETS[0],
            MEMBER_BOB,
            1,
            body_json(
                {
                    "type": "text",
                    "text": "Hallo! 👋",
                    "reply_to": alice_text,
                    "quote": "Grüße, 世界! 👋🏽 Ünïcödé",
                    "sent_at": SENT_AT + 10,
                }
            ),
        ),
        (
            "reaction",
            ROOM_SECRETS[0],
            MEMBER_BOB,
            1,
            body_json(
                {"type": "reaction", "to": alice_text, "emoji": "👍🏽", "add": True, "sent_at": SENT_AT + 11}
            ),
        ),
        (
            "reaction taken back",
            ROOM_SECRETS[0],
            MEMBER_BOB,
            1,
            body_json(
                {"type": "reaction", "to": alice_text, "emoji": "👍🏽", "add": False, "sent_at": SENT_AT + 12}
            ),
        ),
        (
            "edit by the author",
            ROOM_SECRETS[0],
            MEMBER_ALICE,
            0,
            body_json(
                {"type": "edit", "to": alice_text, "text": "Grüße, Welt! (edited)", "sent_at": SENT_AT + 13}
            ),
        ),
        (
            "delete by the author",
            ROOM_SECRETS[0],
            MEMBER_ALICE,
            0,
            body_json({"type": "delete", "to": alice_text, "sent_at": SENT_AT + 14}),
        ),
        (
            "edit of another member's message (well-formed and signed; receivers ignore it)",
            ROOM_SECRETS[0],
            MEMBER_BOB,
            1,
            body_json(
                {"type": "edit", "to": alice_text, "text": "forged words", "sent_at": SENT_AT + 15}
            ),
        ),
    ]

    sealed_vectors = []
    for index, (name, secret, member, signer, body) in enumerate(bodies):
        iv = fixed(f"iv {index}", IV_LEN)
        aad, signed, signature, sealed = seal(secret, member, keys[signer], body, iv)
        sealed_vectors.append(
            {
                "name": name,
                "secret": b64u(secret),
                "member": member,
                "seed": b64u(IDENTITY_SEEDS[signer]),
                "iv": b64u(iv),
                "body": body.decode("utf-8"),
                "aad": b64u(aad),
                "signed": b64u(signed),
                "signature": b64u(signature),
                "sealed": b64u(sealed),
            }
        )

    invalid = build_invalid(keys)
    check(sealed_vectors, invalid)

    return {
        "version": 1,
        "generator": "scripts/gen-crypto-vectors.py",
        "rooms": rooms,
        "identities": identities,
        "sealed": sealed_vectors,
        "invalid": invalid,
        "files": files,
    }


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def build_invalid(keys: list[Ed25519PrivateKey]) -> list[dict]:
    alice, bob = keys[0], keys[1]
    # A message reference (docs/crypto.md §8): the author's public key and the body's sent_at.
    alice_text = {"key": b64u(public_bytes(alice)), "sent_at": SENT_AT + 2}
    secret, other_secret = ROOM_SECRETS[0], ROOM_SECRETS[1]
    body = body_json({"type": "text", "text": "tamper with me", "sent_at": SENT_AT + 100})
    iv = fixed("invalid iv", IV_LEN)
    _, _, signature, good = seal(secret, MEMBER_ALICE, alice, body, iv)
    alice_pk, bob_pk = public_bytes(alice), public_bytes(bob)

    def entry(name, sealed, error, *, room=secret, member=MEMBER_ALICE, pk=alice_pk):
        return {
            "name": name,
            "secret": b64u(room),
            "member": member,
            "public_key": b64u(pk),
            "sealed": b64u(sealed),
            "error": error,
        }

    # A payload that is authentic AES-GCM under the right key and aad, but whose
    # signature is over a different body: only the signature check can catch it.
    other_body = body_json({"type": "text", "text": "something else", "sent_at": SENT_AT})
    other_sig = alice.sign(signed_for(secret, MEMBER_ALICE, other_body))
    swapped_sig = (
        bytes([VERSION])
        + iv
        + AESGCM(message_key(secret)).encrypt(iv, other_sig + body, aad_for(secret, MEMBER_ALICE))
    )
    # Signed by the right key but over another member id, then encrypted for Alice.
    other_member_sig = alice.sign(signed_for(secret, MEMBER_BOB, body))
    wrong_member_sig = (
        bytes([VERSION])
        + iv
        + AESGCM(message_key(secret)).encrypt(
            iv, other_member_sig + body, aad_for(secret, MEMBER_ALICE)
        )
    )
    # Authentic encryption of a plaintext too short to hold a signature.
    short_plain = (
        bytes([VERSION])
        + iv
        + AESGCM(message_key(secret)).encrypt(iv, b"short", aad_for(secret, MEMBER_ALICE))
    )
    _, _, _, signed_by_bob = seal(secret, MEMBER_ALICE, bob, body, iv)

    assert signature != other_sig
    return [
        entry("flipped ciphertext byte", flip(good, 1 + IV_LEN + 70), "decrypt"),
        entry("flipped first ciphertext byte (inside the signature)", flip(good, 13), "decrypt"),
        entry("flipped tag byte", flip(good, len(good) - 1, 0x80), "decrypt"),
        entry("flipped iv byte", flip(good, 1 + 5), "decrypt"),
        entry("wrong room secret", good, "decrypt", room=other_secret),
        entry("wrong member (re-attributed by the server)", good, "decrypt", member=MEMBER_BOB),
        entry("ciphertext truncated by one byte", good[:-1], "decrypt"),
        entry("one byte appended", good + b"\x00", "decrypt"),
        entry("valid encryption, signature by another key", signed_by_bob, "signature"),
        entry(
            "valid encryption, receiver has the wrong public key", good, "signature", pk=bob_pk
        ),
        entry("valid encryption, signature over another body", swapped_sig, "signature"),
        entry("valid encryption, signature over another member", wrong_member_sig, "signature"),
        entry("bad version byte 0x02", flip(good, 0, 0x03), "format"),
        entry("version byte 0x00", bytes([0]) + good[1:], "format"),
        entry("too short: empty", b"", "format"),
        entry("too short: version only", bytes([VERSION]), "format"),
        entry("too short: version, iv and tag only", good[: 1 + IV_LEN + TAG_LEN], "format"),
        entry("too short: authentic, but no room for a signature", short_plain, "format"),
    ]


def check(sealed_vectors: list[dict], invalid: list[dict]) -> None:
    for v in sealed_vectors:
        pk = public_bytes(identity(unb64u(v["seed"])))
        body = open_sealed(unb64u(v["secret"]), v["member"], pk, unb64u(v["sealed"]))
        assert body == v["body"].encode("utf-8"), v["name"]
    for v in invalid:
        try:
            open_sealed(
                unb64u(v["secret"]), v["member"], unb64u(v["public_key"]), unb64u(v["sealed"])
            )
        except OpenError as e:
            assert e.kind == v["error"], (v["name"], e.kind)
        else:
            raise AssertionError(f"invalid vector opened: {v['name']}")


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "testdata" / "crypto-vectors.json"
    vectors = build()
    text = json.dumps(vectors, ensure_ascii=False, indent=2) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(
        f"wrote {out}: {len(vectors['rooms'])} rooms, {len(vectors['identities'])} identities, "
        f"{len(vectors['sealed'])} sealed, {len(vectors['invalid'])} invalid, "
        f"{len(vectors['files'])} files"
    )


if __name__ == "__main__":
    main()
