#!/usr/bin/env python3
"""Writes web/test/qr-vectors.json: QR codes made by the Python package qrcode (an
independent encoder, `pip install qrcode`), to check web/src/qr.ts against, module for
module. Its penalty score differs from the standard's (and from qr.ts), so the test
encodes each text with the mask qrcode picked. (Not segno: in byte mode it writes a 0x00
byte after the terminator, where ISO/IEC 18004 puts the first pad codeword.)

Byte mode, error correction level M, no quiet zone. For each text: the version and mask
qrcode picks, and its modules as rows of "0"/"1"; one text is also encoded with each of
the eight masks forced."""
import json
import pathlib

import importlib.metadata

import qrcode
from qrcode.util import MODE_8BIT_BYTE, QRData

TEXTS = [
    "hello",
    "https://chat.example.org/#q7Jb0W0v4m3e1yH9kS2c8pX5tQ6rZ1aL0nD3fG7hJ2k",
    "http://127.0.0.1:39127/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    "http://localhost:8000/#_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_",
    "https://streamchat.a-rather-long-host-name.example.com:8443/#Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
    "Grüße, שלום, مرحبا, 你好 🙂",
    "x" * 300,
    "0123456789" * 120,
]


def code(text, mask=None):
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=mask)
    qr.add_data(QRData(text.encode("utf-8"), mode=MODE_8BIT_BYTE))
    qr.make(fit=True)
    rows = ["".join("1" if bit else "0" for bit in row) for row in qr.get_matrix()]
    # (best_mask_pattern draws trial codes over the matrix: only after reading it.)
    chosen = qr.mask_pattern if mask is not None else qr.best_mask_pattern()
    return {"text": text, "version": qr.version, "mask": chosen, "rows": rows}


vectors = {
    "generator": f"qrcode {importlib.metadata.version('qrcode')}",
    "chosen": [code(text) for text in TEXTS],
    "forced": [code(TEXTS[1], mask) for mask in range(8)],
}
out = pathlib.Path(__file__).with_name("qr-vectors.json")
out.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print(f"wrote {out}: {len(vectors['chosen'])} chosen, {len(vectors['forced'])} forced")
