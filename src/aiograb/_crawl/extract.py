"""HTML, CSS and sitemap bodies -> the links and image URLs they hold. Pure, no I/O.

HTML goes through selectolax (lexbor), which parses malformed markup the way
browsers do and costs about 100 µs for a 10 KB page. What counts as an image a
page shows:

- ``<img src>``, ``srcset`` (the largest candidate, or all with ``all_sizes``),
  lazy-loading ``data-src`` / ``data-srcset`` / ``data-original`` (any element),
  ``<picture><source srcset>``, ``<video poster>``, ``<input type=image src>``;
- ``<meta property="og:image">`` and ``twitter:image`` (and their ``:url``,
  ``:secure_url``, ``:src`` forms);
- ``<link rel="icon"|"shortcut icon"|"apple-touch-icon"|"preload" as="image">``;
- ``url(...)`` in inline ``style`` attributes and ``<style>`` elements;
- ``<a href>`` whose path ends in an image extension.

Other ``<a href>`` / ``<area href>`` are page links (``nofollow`` when the link
or the page's ``<meta name="robots">`` says so); ``<link rel=stylesheet>`` is a
stylesheet. URLs are returned as written; ``base`` (from ``<base href>``) is
what to resolve them against.

>>> page = extract_html(b'<img src="a.jpg" alt="A"><a href="/b">b</a>', None)
>>> [(f.url, f.kind, f.alt) for f in page.found]
[('a.jpg', 'image', 'A'), ('/b', 'page', None)]
"""

from __future__ import annotations

import codecs
import gzip
import html
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import webencodings
from selectolax.lexbor import LexborHTMLParser, LexborNode

from aiograb._crawl.srcset import largest, parse_srcset, source_set

__all__ = [
    "IMAGE_EXTENSIONS",
    "Found",
    "Page",
    "decode_html",
    "extract_css",
    "extract_html",
    "extract_sitemap",
    "is_image_path",
    "parse_srcset",
]

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".png",
    ".gif",
    ".webp",
    ".avif",
    ".bmp",
    ".svg",
    ".tif",
    ".tiff",
    ".ico",
    ".jxl",
    ".heic",
    ".heif",
)
_NOT_IMAGES_IN_CSS = (".woff", ".woff2", ".ttf", ".otf", ".eot", ".css", ".svgz#")
MAX_ALT = 500
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit, uncompressed

_SELECTOR = (
    "img, source, a[href], area[href], link[href], meta[content], video[poster], "
    "input[src], [style], style, [data-src], [data-srcset], [data-original]"
)
# Linear on hostile input: an unquoted URL stops at "(" (so "url(url(url(..." does
# not rescan the rest at every position), a quoted one is at most 4 KiB.
_CSS_URL = re.compile(
    r"""url\(\s*(?:"([^"\n]{0,4096})"|'([^'\n]{0,4096})'|([^()'"\s]*))\s*\)""", re.IGNORECASE
)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_SITEMAP_LOC = re.compile(rb"<loc>\s*(.*?)\s*</loc>", re.IGNORECASE | re.DOTALL)
_OG_IMAGE = frozenset(
    {
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
    }
)
_ICON_RELS = frozenset({"icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon"})
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16le"),
    (codecs.BOM_UTF16_BE, "utf-16be"),
)


@dataclass(frozen=True, slots=True)
class Found:
    """One URL found in a document, as written there."""

    url: str
    kind: str  # page | image | css | data (a data: URI of an image)
    alt: str | None = None
    nofollow: bool = False


@dataclass(slots=True)
class Page:
    """What ``extract_html`` found: URLs in document order, and the base to resolve them."""

    found: list[Found] = field(default_factory=list)
    base: str | None = None  # <base href>, as written
    encoding: str = "utf-8"


def is_image_path(url: str) -> bool:
    """Whether a URL's path ends in a known image extension (case-insensitive)."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return path.lower().endswith(IMAGE_EXTENSIONS)


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode an HTML body as browsers do: BOM, then the Content-Type charset, then
    ``<meta charset>`` in the first 1 KB, then UTF-8, or windows-1252 when the bytes are
    not UTF-8. Labels are the WHATWG Encoding Standard's: an unknown one (``rot13``,
    ``base64``, ``idna``, ``undefined``) is passed over for the next source.
    Undecodable bytes become U+FFFD. Returns (text, the encoding's standard name)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    header = _HEADER_CHARSET.search(content_type) if content_type else None
    if header is not None and (found := webencodings.lookup(header.group(1))) is not None:
        return _decode(body, found)
    if meta := _META_CHARSET.search(body[:1024]):
        found = webencodings.lookup(meta.group(1).decode("ascii", "replace"))
        if found is not None and found.name in ("utf-16le", "utf-16be"):
            found = webencodings.UTF8  # a meta tag readable as ASCII cannot mean UTF-16
        elif found is not None and found.name == "x-user-defined":
            found = webencodings.lookup("windows-1252")
        if found is not None:
            return _decode(body, found)
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace"), "windows-1252"


def _decode(body: bytes, encoding: webencodings.Encoding) -> tuple[str, str]:
    if encoding.name == "replacement":  # iso-2022-kr & co: browsers show one U+FFFD
        return ("\ufffd" if body else ""), encoding.name
    text, _ = encoding.codec_info.decode(body, "replace")
    return text, encoding.name


def _attr(node: LexborNode, name: str) -> str | None:
    value = node.attributes.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _alt(node: LexborNode) -> str | None:
    alt = node.attributes.get("alt") or node.attributes.get("title")
    if alt is None:
        return None
    alt = " ".join(alt.split())
    return alt[:MAX_ALT] if alt else None


class _Collector:
    def __init__(self, all_sizes: bool, follow_nofollow: bool) -> None:
        self.found: list[Found] = []
        self.all_sizes = all_sizes
        self.follow_nofollow = follow_nofollow
        self.nofollow_page = False
        self.picture_alt: dict[int, str | None] = {}  # <picture> mem_id -> its <img> alt

    def alt_of_picture(self, picture: LexborNode) -> str | None:
        """The alt of a <picture>'s <img>, looked up once per picture, not per <source>
        (30,000 sources must not mean 30,000 scans of the picture)."""
        key = picture.mem_id
        if key not in self.picture_alt:
            img = picture.css_first("img")
            self.picture_alt[key] = _alt(img) if img is not None else None
        return self.picture_alt[key]

    def image(self, url: str | None, alt: str | None = None) -> None:
        if not url:
            return
        if url[:5].lower() == "data:":
            self.found.append(Found(url, "data", alt))
        else:
            self.found.append(Found(url, "image", alt))

    def srcset(
        self, node: LexborNode, attr: str, alt: str | None, src: str | None, sizes: str = "sizes"
    ) -> None:
        """The element's source set (srcset.py): the largest candidate, or all of them."""
        value = node.attributes.get(attr)  # as written: only ASCII whitespace separates
        if value is None:
            return
        candidates = source_set(value, sizes=node.attributes.get(sizes), src=src)
        if not self.all_sizes:
            best = largest(candidates)
            candidates = [best] if best is not None else []
        for c in candidates:
            self.image(c.url, alt)

    def style(self, text: str | None, alt: str | None = None) -> None:
        if text and "url(" in text.lower():
            for url in extract_css(text).images:
                self.image(url, alt)

    def link(self, url: str | None, rel: str | None, alt: str | None = None) -> None:
        if not url:
            return
        if is_image_path(url):
            self.image(url, alt)
            return
        nofollow = not self.follow_nofollow and (
            self.nofollow_page or "nofollow" in (rel or "").lower().split()
        )
        self.found.append(Found(url, "page", None, nofollow))


def extract_html(
    body: bytes,
    content_type: str | None,
    *,
    all_sizes: bool = False,
    follow_nofollow: bool = False,
    css: bool = False,
) -> Page:
    """Every link and image URL of an HTML page, in document order (see the module doc)."""
    text, encoding = decode_html(body, content_type)
    tree = LexborHTMLParser(text)
    page = Page(encoding=encoding)
    base = tree.css_first("base[href]")
    if base is not None:
        page.base = _attr(base, "href")
    c = _Collector(all_sizes, follow_nofollow)
    for meta in tree.css("meta[name]"):
        if (meta.attributes.get("name") or "").strip().lower() == "robots":
            words = (meta.attributes.get("content") or "").lower().replace(",", " ").split()
            c.nofollow_page = c.nofollow_page or "nofollow" in words or "none" in words
    seen: set[int] = set()  # a node matching several parts of the selector comes once each
    for node in tree.css(_SELECTOR):
        if node.mem_id not in seen:
            seen.add(node.mem_id)
            _visit(node, c, css)
    page.found = c.found
    return page


def _visit(node: LexborNode, c: _Collector, css: bool) -> None:
    tag = node.tag
    if tag == "img":
        alt, src = _alt(node), _attr(node, "src")
        if node.attributes.get("srcset") is not None:
            c.srcset(node, "srcset", alt, src)
        else:
            c.image(src, alt)
    elif tag == "source":
        parent = node.parent  # a <source> of <video>/<audio> is no image candidate
        if parent is not None and parent.tag == "picture":
            c.srcset(node, "srcset", c.alt_of_picture(parent), None)
    elif tag in ("a", "area"):
        c.link(_attr(node, "href"), node.attributes.get("rel"), _alt(node))
    elif tag == "link":
        _link_tag(node, c, css)
    elif tag == "meta":
        what = (node.attributes.get("property") or node.attributes.get("name") or "").lower()
        if what.strip() in _OG_IMAGE:
            c.image(_attr(node, "content"))
    elif tag == "video":
        c.image(_attr(node, "poster"))
    elif tag == "input" and (node.attributes.get("type") or "").lower() == "image":
        c.image(_attr(node, "src"), _alt(node))
    elif tag == "style":
        c.style(node.text(deep=True))
    # Any element: lazy-loading attributes and inline styles.
    c.srcset(node, "data-srcset", _alt(node), None, sizes="data-sizes")
    for name in ("data-src", "data-original"):
        c.image(_attr(node, name), _alt(node))
    c.style(node.attributes.get("style"))


def _link_tag(node: LexborNode, c: _Collector, css: bool) -> None:
    rels = set((node.attributes.get("rel") or "").lower().split())
    href = _attr(node, "href")
    if rels & _ICON_RELS or "shortcut" in rels:
        c.image(href)
    elif "preload" in rels and (node.attributes.get("as") or "").lower() == "image":
        if _attr(node, "imagesrcset") is not None:
            c.srcset(node, "imagesrcset", None, href, sizes="imagesizes")
        else:
            c.image(href)
    elif "stylesheet" in rels and css and href:
        c.found.append(Found(href, "css"))


@dataclass(slots=True)
class CssUrls:
    images: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)


def extract_css(text: str) -> CssUrls:
    """Image URLs in ``url(...)`` and ``@import`` targets of a stylesheet (fonts are left out).

    >>> extract_css("a{background:url('x.png')} @import 'more.css';").images
    ['x.png']
    """
    out = CssUrls()
    for m in _CSS_IMPORT.finditer(text):
        out.imports.append((m.group(1) or m.group(2)).strip())
    for m in _CSS_URL.finditer(text):
        url = (m.group(1) or m.group(2) or m.group(3) or "").strip()
        if not url or url.startswith("#"):
            continue
        path = url.split("?", 1)[0].lower()
        # ``@import url(x)`` imports x whatever its name: look back a few characters.
        after_import = text[max(0, m.start() - 24) : m.start()].rstrip().lower()
        if path.endswith(".css") or after_import.endswith("@import"):
            out.imports.append(url)
        elif not path.endswith(_NOT_IMAGES_IN_CSS):
            out.images.append(url)
    return out


def extract_sitemap(body: bytes) -> tuple[list[str], bool]:
    """The ``<loc>`` URLs of a sitemap (gzip or plain) and whether it is a sitemap index.

    Parsed with a regular expression, not an XML parser, so entity tricks cannot
    blow it up; at most ``MAX_SITEMAP_BYTES`` are read after decompression.
    """
    if body[:2] == b"\x1f\x8b":
        try:
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, MAX_SITEMAP_BYTES)
        except (zlib.error, gzip.BadGzipFile):
            return [], False
    head = body[:4096].lower()
    is_index = b"<sitemapindex" in head
    urls = [
        html.unescape(m.group(1).decode("utf-8", "replace")) for m in _SITEMAP_LOC.finditer(body)
    ]
    return urls, is_index
