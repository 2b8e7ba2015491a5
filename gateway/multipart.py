"""A faster multipart/form-data parser for the common case, Werkzeug's for the rest.

Every brush stroke uploads ~200 KB of multipart form (the working copy and
the mask). Werkzeug's streaming parser spends ~1.4 ms on it inside the
gateway, searching its buffer with regular expressions chunk by chunk. The
bodies browsers, curl and requests send are simpler than what that parser
must accept: CRLF line breaks, no preamble, boundaries only where they
belong. For those, the whole body (already bounded by MAX_CONTENT_LENGTH) is
split with bytes.split, a tenth of the time. Anything else, down to one stray
byte, is handed to Werkzeug's parser unchanged, so what a request means (and
every error or limit) never depends on which parser read it.
"""

from __future__ import annotations

import io

from flask import Request
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header

CRLF = b"\r\n"


class _Unusual(Exception):
    """The body is not in the simple form the fast path reads."""


def _headers(block: bytes) -> Headers:
    """A part's header block -> Headers, as Werkzeug would read it (or _Unusual)."""
    if not block.isascii():
        raise _Unusual
    headers = []
    for line in block.split(CRLF):
        # Continuation lines and lone CR/LF are Werkzeug's to interpret.
        if b"\r" in line or b"\n" in line or line[:1] in (b" ", b"\t"):
            raise _Unusual
        line = line.strip(b" \t")
        if line:
            name, _, value = line.decode("ascii").partition(":")
            headers.append((name.strip(" \t"), value.strip(" \t")))
    return Headers(headers)


class FastFormDataParser(FormDataParser):
    def _parse_multipart(self, stream, mimetype, content_length, options):
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        body = stream.read()
        try:
            form, files = self._split(body, boundary, content_length)
        except _Unusual:
            return super()._parse_multipart(io.BytesIO(body), mimetype, content_length, options)
        return stream, form, files

    def _split(self, body: bytes, boundary: bytes, content_length: int | None):
        delimiter = b"--" + boundary
        opening = delimiter + CRLF
        closing = CRLF + delimiter + b"--"
        end = body.rfind(closing)
        if not body.startswith(opening) or end < 0 or body[end + len(closing) :] not in (b"", CRLF):
            raise _Unusual
        parts = body[len(opening) : end].split(CRLF + opening)
        # The delimiter anywhere but at the places just split on (inside a part,
        # or with trailing blanks) is read differently by Werkzeug's parser.
        if body.count(delimiter) != len(parts) + 1:
            raise _Unusual
        if self.max_form_parts is not None and len(parts) > self.max_form_parts:
            raise _Unusual  # Werkzeug answers 413

        fields, files = [], []
        charset_of = MultiPartParser().get_part_charset
        for part in parts:
            block, blank, content = part.partition(CRLF + CRLF)
            if not blank:
                raise _Unusual
            headers = _headers(block)
            if "content-disposition" not in headers:
                raise _Unusual
            _, extra = parse_options_header(headers["content-disposition"])
            name, filename = extra.get("name"), extra.get("filename")
            if name is None:
                raise _Unusual
            if filename is None:
                if (
                    self.max_form_memory_size is not None
                    and len(content) > self.max_form_memory_size
                ):
                    raise _Unusual  # Werkzeug answers 413
                fields.append((name, content.decode(charset_of(headers), "replace")))
                continue
            container = self.stream_factory(
                total_content_length=content_length,
                filename=filename,
                content_type=headers.get("content-type"),
                content_length=len(content),
            )
            container.write(content)
            container.seek(0)
            files.append((name, FileStorage(container, filename, name, headers=headers)))
        return self.cls(fields), self.cls(files)


class GatewayRequest(Request):
    form_data_parser_class = FastFormDataParser
