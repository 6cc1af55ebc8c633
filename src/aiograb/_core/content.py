"""What a body is: magic-byte sniffing and the accept policy.

The bytes decide, not the server's Content-Type: an HTML error page served as
``image/jpeg`` is refused, and a JPEG served as ``application/octet-stream``
is kept. Content-Type is used only to refuse early (``text/html`` when images
are wanted) and to name files that have no recognisable magic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiograb._core.errors import NotAccepted

__all__ = ["SNIFF_BYTES", "AcceptPolicy", "extension_for", "mime_for", "sniff"]

SNIFF_BYTES = 32

# (prefix, offset, mime)
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"\x00\x00\x01\x00", 0, "image/x-icon"),
    (b"\xff\x0a", 0, "image/jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "image/jxl"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
)
_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"isom": "video/mp4",
    b"mp42": "video/mp4",
}
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/x-icon": "ico",
    "image/vnd.microsoft.icon": "ico",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/jxl": "jxl",
    "image/svg+xml": "svg",
    "application/pdf": "pdf",
    "application/zip": "zip",
    "application/gzip": "gz",
    "video/mp4": "mp4",
    "text/html": "html",
    "text/plain": "txt",
    "application/json": "json",
}
# Content types that may carry anything: the magic bytes decide.
_GENERIC = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/x-binary"}
)


# The signatures by first byte: one dict lookup instead of a scan (every body is sniffed).
_MAGIC_BY_FIRST: dict[int, tuple[tuple[bytes, str], ...]] = {}
for _prefix, _offset, _mime in _MAGIC:
    assert _offset == 0
    _MAGIC_BY_FIRST[_prefix[0]] = (*_MAGIC_BY_FIRST.get(_prefix[0], ()), (_prefix, _mime))
_SPACE = b" \t\n\r\x0b\x0c"


def sniff(head: bytes) -> str | None:
    """The MIME type that a body's first bytes prove, or None.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n....")
    'image/png'
    """
    if not head:
        return None
    for prefix, mime in _MAGIC_BY_FIRST.get(head[0], ()):
        if head.startswith(prefix):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    if head[0] != 0x3C and head[0] not in _SPACE:  # markup starts with '<'
        return None
    text = head.lstrip()[:SNIFF_BYTES].lower()
    if text.startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "image/svg+xml"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    return None


STORED_EXTENSIONS = frozenset({*_EXTENSIONS.values(), "bin"})
"""Every extension ``extension_for`` can give: what a stored file's name may end in."""


def extension_for(mime: str | None) -> str:
    """A file extension (without dot) for a MIME type; ``bin`` when unknown."""
    return _EXTENSIONS.get(mime or "", "bin")


_MIME_OF_EXTENSION = {ext: mime for mime, ext in reversed(_EXTENSIONS.items())}


def mime_for(ext: str) -> str | None:
    """The MIME type of a file extension (without dot), e.g. ``mime_for("jpg") == "image/jpeg"``."""
    return _MIME_OF_EXTENSION.get(ext.lower())


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class AcceptPolicy:
    """Which bodies to keep: ``image`` (any image), ``any``, or a list of MIME types."""

    spec: str = "image"
    any: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "any", self.spec.strip().lower() in ("any", "*", "*/*"))

    def _types(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.spec.split(",") if t.strip())

    def check_header(self, content_type: str | None, url: str) -> None:
        """Refuse early, before the body is read, on a Content-Type that cannot fit."""
        if self.any:
            return
        base = _base_type(content_type)
        if base in _GENERIC or base.startswith("image/"):
            return
        if self.spec.strip().lower() == "image" or base not in self._types():
            raise NotAccepted(f"Content-Type {base!r} is not an image", url=url)

    def check_body(self, head: bytes, content_type: str | None, url: str) -> str:
        """Check the first bytes; return the MIME type to record.

        Raises ``NotAccepted`` (``not_image`` / ``unaccepted_type`` / ``empty_body``).
        """
        sniffed = sniff(head)
        declared = _base_type(content_type)
        if self.any:
            return sniffed or declared or "application/octet-stream"
        if not head:
            raise NotAccepted("empty body", url=url, code="empty_body")
        if self.spec.strip().lower() != "image":
            if sniffed in self._types() or (sniffed is None and declared in self._types()):
                return sniffed or declared
            raise NotAccepted(
                f"body is {sniffed or declared or 'unrecognised bytes'}, not one of {self.spec}",
                url=url,
                code="unaccepted_type",
            )
        if sniffed is None or not sniffed.startswith("image/"):
            what = sniffed or "unrecognised bytes"
            raise NotAccepted(
                f"body is {what}, not an image (Content-Type {declared or 'none'})", url=url
            )
        return sniffed
