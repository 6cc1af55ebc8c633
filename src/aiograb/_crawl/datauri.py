"""``data:`` URIs found on pages: decoded and saved at once, as ``ok`` rows."""

from __future__ import annotations

import base64
import urllib.parse

from aiograb._core.content import AcceptPolicy
from aiograb._core.errors import InvalidURL, NotAccepted
from aiograb._core.urls import url_key
from aiograb._store.journal import SavedFile
from aiograb._store.sinks import FileSink

__all__ = ["decode_data_uri", "save_data_uri"]

_IMAGES = AcceptPolicy("image")


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """The bytes and declared MIME type of a ``data:`` URI; ``InvalidURL`` if malformed."""
    header, comma, data = uri[5:].partition(",")
    if not comma:
        raise InvalidURL("data: URI without a comma", url=uri[:60], code="invalid_data_uri")
    params = [p.strip().lower() for p in header.split(";")]
    raw = urllib.parse.unquote_to_bytes(data)
    if "base64" in params[1:]:
        try:
            raw = base64.b64decode(b"".join(raw.split()), validate=True)
        except ValueError as exc:
            raise InvalidURL(
                f"data: URI is not valid base64: {exc}", url=uri[:60], code="invalid_data_uri"
            ) from exc
    return raw, params[0] or "text/plain"


def save_data_uri(uri: str, key: str, sink: FileSink, max_bytes: int) -> SavedFile:
    """Decode, check (an image, within ``max_bytes``) and store a data: URI.

    Raises a ``RequestError`` (``InvalidURL``, ``NotAccepted``...) with its class.
    """
    shown = uri[:60] + ("…" if len(uri) > 60 else "")
    body, declared = decode_data_uri(uri)
    if max_bytes and len(body) > max_bytes:
        raise NotAccepted(
            f"data: URI of {len(body)} bytes > max_bytes {max_bytes}", code="too_large"
        )
    mime = _IMAGES.check_body(body[:32], declared, shown)
    writer = sink.open(url_key(key))
    writer.write(body)
    stored = writer.commit(mime)
    assert stored.path is not None
    return SavedFile(stored.path, stored.size, stored.sha256, mime)
