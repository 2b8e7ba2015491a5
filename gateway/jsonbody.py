"""JSON answers whose big strings are base64 pictures, written without a scan.

An /edit answer is ~280 KB of JSON, nearly all of it base64 PNGs. json.dumps
scans every character of every string for ones to escape, and a str copy or
two of each picture follows (0.5-1 ms in all); base64 text needs no escaping,
so it stays bytes and is joined into the answer as it is. Everything else
goes through json.dumps as usual.
"""

from __future__ import annotations

import base64
import json
import uuid

from flask import Response


class Base64:
    """Bytes to send as a base64 JSON string, encoded once, never escaped."""

    __slots__ = ("text",)

    def __init__(self, data: bytes) -> None:
        self.text = base64.b64encode(data)  # A-Z a-z 0-9 + / =: valid in a JSON string

    def __str__(self) -> str:
        return self.text.decode("ascii")


INDEX_DIGITS = 6


def _hide(value, blobs: list[Base64], token: str):
    if isinstance(value, Base64):
        blobs.append(value)
        return f"{token}{len(blobs) - 1:0{INDEX_DIGITS}d}"
    if isinstance(value, dict):
        return {key: _hide(item, blobs, token) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_hide(item, blobs, token) for item in value]
    return value


def dumps(value) -> bytes:
    """json.dumps(value) (compact, UTF-8), Base64 values joined in without a scan."""
    blobs: list[Base64] = []
    # A fresh token per answer: no string of the answer can contain it by chance.
    token = f"b64-{uuid.uuid4().hex}-"
    skeleton = json.dumps(_hide(value, blobs, token), separators=(",", ":")).encode()
    if not blobs:
        return skeleton
    # Each piece after the first starts with the index of the blob it replaces.
    first, *rest = skeleton.split(token.encode())
    pieces = [first]
    for piece in rest:
        pieces += [blobs[int(piece[:INDEX_DIGITS])].text, piece[INDEX_DIGITS:]]
    return b"".join(pieces)


def json_response(value, status: int = 200) -> Response:
    return Response(dumps(value), status=status, mimetype="application/json")
