"""Request bodies as every endpoint reads them: a ``Content-Encoding`` undone within the size
limit, the JSON parsed, and a body that cannot be read refused with a problem saying why and
where (``400 malformed-body`` naming ``body``, ``415`` naming ``Content-Encoding``, ``413``).

The tracking endpoints read their raw bodies themselves (``events.ingest``) and call
:func:`decoded_body` and :func:`parse_body`; every other endpoint takes a JSON model that
FastAPI parses, and meets the same code twice: :class:`UndoContentEncoding` inflates its body
before FastAPI reads it, and when FastAPI cannot parse it (text that is not UTF-8, nesting
deeper than Python's recursion limit) :func:`unreadable_body` explains the failure as
:func:`parse_body` would have. The usual request pays one look for a ``Content-Encoding``
header; a body that parses is never read twice.

Compressed bodies are inflated in steps, and a body that inflates past the limit is refused as
soon as it does, so a small "zip bomb" costs no more memory than the limit.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.platform.errors import (
    InvalidInput,
    MalformedBody,
    PayloadTooLarge,
    Problem,
    field_error,
)
from rapport.platform.openapi import validated_body
from rapport.platform.settings import app_settings

M = TypeVar("M", bound=BaseModel)

# Content codings a body may come in, and zlib's window bits for each (gzip: a gzip header;
# deflate: RFC 9110 says a zlib stream, but some clients send raw deflate, tried second).
CONTENT_CODINGS = ("gzip", "x-gzip", "deflate", "identity")
_GZIP_BITS = 16 + zlib.MAX_WBITS
_INFLATE_STEP = 64 * 1024
# Compressed bodies up to this size are inflated on the event loop (well under a millisecond);
# larger ones in a worker thread.
INFLATE_ON_LOOP = 16 * 1024
# How deeply a JSON body may nest arrays and objects (orjson's own limit): no request of the
# API comes near it.
MAX_DEPTH = 1024


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class UnsupportedEncoding(UnsupportedMediaType):
    """A ``Content-Encoding`` Rapport does not know."""


def not_json(content_type: str) -> UnsupportedMediaType:
    """415 naming ``Content-Type`` for a body a JSON endpoint got declared as something else
    (``content_type``: the media type the request said, or empty)."""
    said = f"this request said {content_type!r}" if content_type else "this request sent none"
    return UnsupportedMediaType(
        f"The body must be JSON sent with Content-Type: application/json; {said}",
        field="Content-Type",
    )


def declares_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` says JSON as FastAPI takes it for a model's body:
    ``application/json`` or ``application/…+json``, whatever its parameters."""
    main, _, sub = (content_type or "").split(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


# A UTF-8 byte order mark before the JSON: RFC 8259 lets a parser ignore one, and FastAPI's
# reader (the standard library's) does, so every body reader drops it.
_BOM = codecs.BOM_UTF8


def decoded_body(raw: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone (codings applied in order are undone in
    reverse) and a leading UTF-8 byte order mark dropped. 413 naming ``body`` once it
    inflates past ``limit`` bytes, 400 naming ``body`` when it is not the stream it says it
    is, 415 naming ``Content-Encoding`` for a coding Rapport does not know."""
    return _undone(raw, content_encoding, limit=limit).removeprefix(_BOM)


def _undone(raw: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    if not content_encoding:
        return raw
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding not in CONTENT_CODINGS:
            raise UnsupportedEncoding(
                f"Content-Encoding {coding!r} is not supported; send the body as it is or "
                "compressed with gzip or deflate",
                field="Content-Encoding",
            )
        if coding in ("gzip", "x-gzip"):
            raw = _inflate(raw, wbits=_GZIP_BITS, coding="gzip", limit=limit)
        elif coding == "deflate":
            try:
                raw = _inflate(raw, wbits=zlib.MAX_WBITS, coding="deflate", limit=limit)
            except MalformedBody:
                raw = _inflate(raw, wbits=-zlib.MAX_WBITS, coding="deflate", limit=limit)
    return raw


async def decoded_off_loop(raw: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """:func:`decoded_body`, in a worker thread when the body is large enough to hold up the
    event loop."""
    if not content_encoding or len(raw) <= INFLATE_ON_LOOP:
        return decoded_body(raw, content_encoding, limit=limit)
    return await run_in_threadpool(decoded_body, raw, content_encoding, limit=limit)


def _inflate(data: bytes, *, wbits: int, coding: str, limit: int) -> bytes:
    """Inflate ``data`` at most ``_INFLATE_STEP`` bytes at a time, never past ``limit + 1``.
    Concatenated gzip members (allowed by the format) are read one after the other."""
    out = bytearray()
    pending = data
    while True:
        inflater = zlib.decompressobj(wbits=wbits)
        tail = pending
        try:
            while True:
                chunk = inflater.decompress(tail, min(_INFLATE_STEP, limit + 1 - len(out)))
                out += chunk
                if len(out) > limit:
                    raise PayloadTooLarge(
                        f"The request body is larger than {limit} bytes once decompressed; "
                        "split it up.",
                        field="body",
                    )
                tail = inflater.unconsumed_tail
                if inflater.eof or (not tail and not chunk):
                    break
        except zlib.error as error:
            raise _not_encoded(coding, str(error)) from None
        if not inflater.eof:
            raise _not_encoded(coding, "the stream ends early")
        pending = inflater.unused_data
        if not pending or wbits != _GZIP_BITS:
            return bytes(out)


def _not_encoded(coding: str, reason: str) -> MalformedBody:
    return MalformedBody(
        f"The request body is not valid {coding} data ({reason}); compress the whole body "
        f"with {coding}, or send it uncompressed without Content-Encoding",
        field="body",
    )


# orjson reads an integer beyond 64 bits (below -2**63 or above 2**64 - 1) as a float:
# 123456789012345678901234567890 becomes 1.2345678901234568e+29. Such an integer has at least
# 19 digits, so a body with a run of 19 digits or more is read again by the standard library,
# which keeps integers exact: the checks see the number as sent (``number_too_large``)
# instead of a float nobody sent.
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


def parse_body(raw: bytes) -> Any:
    """The request body as JSON, or a 400 problem naming ``body`` that says what is wrong and
    where (see :func:`unreadable_json`), or a 422 naming the key an object holds twice (see
    :func:`refuse_duplicate_keys`)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise unreadable_json(raw, error) from None
    if isinstance(parsed, (dict, list)):
        # orjson keeps the last of a repeated key without a word: read again by the standard
        # library, which keeps integers exact as well.
        try:
            return _unique_keys(raw)
        except RecursionError:
            raise _too_deep(None) from None
    if _LONG_DIGITS.search(raw) is None:
        return parsed
    return json.loads(raw)


DUPLICATE_KEY_CODE = "duplicate_key"


class _RepeatedKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    unique = dict(pairs)
    if len(unique) != len(pairs):
        raise _RepeatedKey
    return unique


def _unique_keys(raw: bytes | str) -> Any:
    """``raw`` parsed by the standard library (which must be able to), refusing an object
    that holds a key twice with :func:`refuse_duplicate_keys`."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_pairs)
    except _RepeatedKey:
        raise refuse_duplicate_keys(raw) from None


class _Pairs(list[tuple[str, Any]]):
    """An object's members in the order sent, repeated keys kept."""


def refuse_duplicate_keys(raw: bytes | str) -> InvalidInput:
    """The 422 for a body whose object holds a key twice (``{"points": 5, "points": 500}``,
    which JSON parsers read as their last value, or their first), naming the first such key
    in the order sent: Rapport does not guess which value was meant."""
    loc = _repeated(json.loads(raw, object_pairs_hook=_Pairs), ("body",))
    assert loc is not None  # only called for a body that has one
    message = f"The key {loc[-1]!r} appears more than once in this object; send each key once"
    error = field_error(loc, message, DUPLICATE_KEY_CODE)
    return InvalidInput(f"{error['field']}: {message}", field=error["field"], errors=[error])


def _repeated(node: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    members: list[tuple[str | int, Any]]
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for name, _ in node:
            if name in seen:
                return (*path, name)
            seen.add(name)
        members = list(node)
    elif isinstance(node, list):
        members = list(enumerate(node))
    else:
        return None
    for key, value in members:
        found = _repeated(value, (*path, key))
        if found is not None:
            return found
    return None


def repeats_a_key(raw: bytes) -> InvalidInput | None:
    """The 422 for a JSON body that holds a key twice in one object, or ``None`` when it holds
    none or is no JSON the standard library reads (its reader then says what is wrong)."""
    try:
        _unique_keys(raw)
    except InvalidInput as problem:
        return problem
    except (ValueError, RecursionError):
        return None
    return None


def unreadable_json(raw: bytes, error: orjson.JSONDecodeError) -> MalformedBody:
    """What is wrong with a body orjson could not parse: empty, not UTF-8 (at which byte),
    nested too deeply, or the parser's own words with the line, column and character."""
    message = str(error)
    if not raw.strip():
        reason = "it is empty"
    elif message.startswith("str is not valid UTF-8"):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return _not_utf8(raw, bad)
        reason = message  # valid bytes, but an escaped lone surrogate (\ud800)
    elif message.startswith("depth limit exceeded"):
        return _too_deep(error.pos)
    else:
        reason = message
    return MalformedBody(f"The request body is not valid JSON: {reason}", field="body")


def _not_utf8(raw: bytes, error: UnicodeDecodeError) -> MalformedBody:
    return MalformedBody(
        f"The request body is not valid UTF-8: byte 0x{raw[error.start]:02x} at position "
        f"{error.start} ({error.reason}); send JSON as UTF-8 text, and a compressed body "
        "with its Content-Encoding",
        field="body",
    )


def _too_deep(position: int | None) -> MalformedBody:
    """Nesting past orjson's limit (``position`` where it met it), or past what the standard
    library's parser reads within Python's recursion limit (about 1,000 levels)."""
    how = (
        f"more than {MAX_DEPTH} levels, at position {position}"
        if position is not None
        else "about 1,000 levels or more"
    )
    return MalformedBody(
        f"The request body is not valid JSON: it is nested too deeply ({how}); send the "
        "objects and lists the endpoint takes",
        field="body",
    )


def unreadable_body(raw: bytes, cause: BaseException | None) -> MalformedBody:
    """The problem with a JSON body FastAPI failed to parse (it says only "There was an error
    parsing the body"): what :func:`parse_body` finds wrong with the same bytes; nesting deep
    enough to exhaust Python's recursion limit but within orjson's is still too deep."""
    problem = json_problem(raw)
    if problem is not None:
        return problem
    if isinstance(cause, UnicodeDecodeError):  # UTF-16 or UTF-32, which json guessed
        return _not_utf8(raw, cause)
    return _too_deep(None)


def json_problem(raw: bytes) -> MalformedBody | None:
    """What :func:`parse_body` finds wrong with ``raw``, or ``None`` when it parses."""
    try:
        parse_body(raw)
    except MalformedBody as problem:
        return problem
    return None


async def read_json_body(request: Request, model: type[M]) -> M:
    """The body of a route that reads its own (FastAPI's parsing costs the hot commands more
    than the work) as ``model``, read as every endpoint reads one: its ``Content-Encoding``
    undone within the size limit, parsed by :func:`parse_body` (so it nests as deeply as any
    other body, and a deeper one is refused in the same words), declared as JSON (415 naming
    ``Content-Type``, as FastAPI's reader of a model's body), then validated: a body that is
    not a JSON object is 422 naming ``body``, in the words of the tracking endpoints."""
    raw = await decoded_off_loop(
        await request.body(),
        request.headers.get("content-encoding"),
        limit=app_settings(request).max_body_bytes,
    )
    content_type = request.headers.get("content-type")
    if raw and not declares_json(content_type):
        raise not_json((content_type or "").split(";")[0].strip())
    parsed = parse_body(raw)
    if not isinstance(parsed, dict):
        raise InvalidInput(
            NOT_AN_OBJECT,
            field="body",
            errors=[field_error(("body",), NOT_AN_OBJECT, "model_type")],
        )
    return validated_body(parsed, model)


NOT_AN_OBJECT = "The body must be a JSON object"


_CONTENT_ENCODING = b"content-encoding"
_CONTENT_TYPE = b"content-type"


class UndoContentEncoding:
    """Inflate a gzip or deflate body (``Content-Encoding``) before an endpoint that takes a
    JSON model reads it, within ``max_bytes`` decompressed; refuse another coding with 415;
    and refuse a JSON body that holds a key twice in one object with 422 naming it
    (:func:`repeats_a_key`), which FastAPI's reader would take as its last value. Routes
    that read their body themselves (tracking) get it as sent and do both themselves
    (:func:`decoded_body`, :func:`parse_body`); a request whose route reads no model passes
    untouched."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        coding = None
        checks_keys = True
        for name, value in scope["headers"]:
            if name == _CONTENT_ENCODING:
                coding = value.decode("latin-1")
            elif name == _CONTENT_TYPE:
                # FastAPI reads a body as JSON when it says JSON or says nothing.
                checks_keys = declares_json(value.decode("latin-1"))
        if coding is not None and coding.strip().lower() in ("", "identity"):
            coding = None
        read: list[Message] = []

        async def reading_receive() -> Message:
            # Asked for the body only once the request is routed: the route says who reads it.
            if read or not _parses_json_model(scope):
                return await receive()  # after the body: a disconnect, as Starlette asks
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            raw = b"".join(chunks)
            if coding is not None:
                raw = await decoded_off_loop(raw, coding, limit=self.max_bytes)
            if checks_keys and raw:
                repeated = repeats_a_key(raw)
                if repeated is not None:
                    raise repeated
            read.append({"type": "http.request", "body": raw, "more_body": False})
            return read[0]

        await self.app(scope, reading_receive, send)


def _parses_json_model(scope: Scope) -> bool:
    """Whether the route that took the request has FastAPI read its body into a model."""
    return getattr(scope.get("route"), "body_field", None) is not None
