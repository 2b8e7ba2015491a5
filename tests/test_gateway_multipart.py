"""gateway/multipart.py reads a body exactly as Werkzeug's parser does: the same
fields, files and errors, whether its fast path or Werkzeug itself did the work.
And gateway/jsonbody.py writes the JSON json.dumps would."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
import requests
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from gateway import multipart
from gateway.jsonbody import Base64, dumps
from gateway.multipart import FastFormDataParser

BOUNDARY = "----WebKitFormBoundaryq8Zk3bT0aVb9xYr1"


def body_of(parts: list[tuple[str, str, bytes]], boundary: str = BOUNDARY) -> bytes:
    """A CRLF multipart body as browsers write it: (headers, name, content) per part."""
    chunks = []
    for headers, content in parts:
        chunks.append(f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def file_part(name: str, content: bytes, filename: str = "blob", kind: str = "image/png"):
    headers = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
    return headers + f"Content-Type: {kind}", content


def field_part(name: str, value: str):
    return f'Content-Disposition: form-data; name="{name}"', value.encode()


def parse(parser_class, body: bytes, boundary: str = BOUNDARY, **limits):
    parser = parser_class(max_form_memory_size=limits.get("memory", 500_000), **{
        key: value for key, value in limits.items() if key == "max_form_parts"
    })  # fmt: skip
    try:
        _, form, files = parser.parse(
            io.BytesIO(body), "multipart/form-data", len(body), {"boundary": boundary}
        )
    except RequestEntityTooLarge:
        return "413"
    return (
        list(form.items(multi=True)),
        [
            (name, f.filename, f.content_type, f.headers.to_wsgi_list(), f.read())
            for name, f in files.items(multi=True)
        ],
    )


@pytest.fixture
def fast_path_taken(monkeypatch):
    """Counts the bodies the fast path read itself (not handed to Werkzeug)."""
    seen = {"fast": 0, "werkzeug": 0}
    original = FormDataParser._parse_multipart

    def werkzeug(self, *args):
        seen["werkzeug"] += 1
        return original(self, *args)

    monkeypatch.setattr(FormDataParser, "_parse_multipart", werkzeug)
    split = FastFormDataParser._split

    def counted(self, *args):
        result = split(self, *args)
        seen["fast"] += 1
        return result

    monkeypatch.setattr(FastFormDataParser, "_split", counted)
    return seen


PNG_LIKE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\r\n\r\n--not-the-boundary\r\n"

COMMON_BODIES = {
    "browser": body_of(
        [
            file_part("image", PNG_LIKE),
            file_part("mask", os.urandom(3000), filename="mask.png"),
            field_part("top_k", "5"),
            field_part("classes", "805,722"),
            field_part("backend", "telea"),
        ]
    ),
    "empty file and empty field": body_of([file_part("image", b""), field_part("cam", "")]),
    "unicode field value": body_of([field_part("note", "Ünïcödé ✓")]),
    "quoted name": body_of([field_part('we\\"ird', "x")]),
    "repeated names": body_of([field_part("a", "1"), field_part("a", "2")]),
    "latin-1 charset field": body_of(
        [
            (
                'Content-Disposition: form-data; name="n"\r\nContent-Type: text/plain; charset=iso-8859-1',
                "café".encode("latin-1"),
            )
        ]
    ),
}


@pytest.mark.parametrize("name", list(COMMON_BODIES))
def test_common_bodies_take_the_fast_path_and_read_as_werkzeug_reads_them(name, fast_path_taken):
    body = COMMON_BODIES[name]
    assert parse(FastFormDataParser, body) == parse(FormDataParser, body)
    assert fast_path_taken == {"fast": 1, "werkzeug": 1}  # the second: the reference parse


def test_bodies_from_requests_and_curl_style_boundaries_take_the_fast_path(fast_path_taken):
    prepared = requests.Request(
        "POST",
        "http://x/",
        files={"image": ("photo.jpg", PNG_LIKE, "image/jpeg"), "mask": ("m.png", b"\x00" * 99)},
        data={"top_k": "3", "cam": "top"},
    ).prepare()
    boundary = prepared.headers["Content-Type"].split("boundary=")[1]
    assert parse(FastFormDataParser, prepared.body, boundary) == parse(
        FormDataParser, prepared.body, boundary
    )
    curl = "------------------------d74496d66958873e"
    body = body_of([file_part("image", PNG_LIKE, filename="a.png")], boundary=curl)
    assert parse(FastFormDataParser, body, curl) == parse(FormDataParser, body, curl)
    assert fast_path_taken["fast"] == 2


def unusual_bodies() -> dict[str, bytes]:
    browser = COMMON_BODIES["browser"]
    delimiter = f"--{BOUNDARY}".encode()
    return {
        "preamble": b"This is a preamble.\r\n" + browser,
        "epilogue": browser + b"trailing words",
        "LF line breaks": browser.replace(b"\r\n", b"\n"),
        "blank after a boundary": browser.replace(delimiter + b"\r\n", delimiter + b"  \r\n", 1),
        "boundary inside a part": body_of([file_part("image", b"a\r\n" + delimiter + b"x")]),
        "early closing delimiter": body_of(
            [file_part("image", b"a\r\n" + delimiter + b"--\r\n" + b"more")]
        ),
        "no closing delimiter": browser[: browser.rfind(delimiter)],
        "header continuation": body_of(
            [('Content-Disposition: form-data;\r\n name="a"', b"1"), field_part("b", "2")]
        ),
        "non-ASCII file name": body_of([file_part("image", b"x", filename="fôto.png")]),
        "no name": body_of([('Content-Disposition: form-data; filename="a"', b"1")]),
        "no Content-Disposition": body_of([("Content-Type: text/plain", b"1")]),
        "no blank line": f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n--{BOUNDARY}--\r\n'.encode(),
        "empty body": b"",
        "garbage": os.urandom(500),
    }


@pytest.mark.parametrize("name", list(unusual_bodies()))
def test_unusual_bodies_are_left_to_werkzeug(name, fast_path_taken):
    body = unusual_bodies()[name]
    assert parse(FastFormDataParser, body) == parse(FormDataParser, body)
    assert fast_path_taken["fast"] == 0


def test_limits_answer_413_as_werkzeug_does():
    many = body_of([field_part(f"f{i}", "1") for i in range(30)])
    assert parse(FastFormDataParser, many, max_form_parts=10) == "413"
    assert parse(FormDataParser, many, max_form_parts=10) == "413"
    big_field = body_of([field_part("note", "x" * 5000)])
    assert parse(FastFormDataParser, big_field, memory=1000) == "413"
    assert parse(FormDataParser, big_field, memory=1000) == "413"


def test_the_gateway_uses_the_fast_parser():
    from gateway.app import create_app

    app = create_app()
    assert app.request_class is multipart.GatewayRequest
    assert app.request_class.form_data_parser_class is FastFormDataParser


def test_json_with_base64_values_is_what_json_dumps_writes():
    picture, cam = os.urandom(5000), os.urandom(700)
    value = {
        "image": Base64(picture),
        "n": 1.5,
        "text": 'quotes " and \\ and ünïcode',
        "cams": [{"png": Base64(cam), "class_id": 3}, {"png": Base64(b"")}],
        "nested": [[Base64(b"ab")], ()],
    }
    written = json.loads(dumps(value))
    expected = {
        "image": base64.b64encode(picture).decode(),
        "n": 1.5,
        "text": 'quotes " and \\ and ünïcode',
        "cams": [{"png": base64.b64encode(cam).decode(), "class_id": 3}, {"png": ""}],
        "nested": [["YWI="], []],
    }
    assert written == expected
    assert json.loads(dumps({"plain": [1, "b64-"]})) == {"plain": [1, "b64-"]}
    assert str(Base64(b"ab")) == "YWI="
