"""A generated web site to crawl: every image-extraction case, traps, robots rules.

Mounted on the test server under ``/site/`` (and a plain variant under
``/plain/`` for benchmarks), with ``/robots.txt`` at the root. Its size is
``ServerConfig.site_pages`` (default 300). Everything is deterministic.

Pages ``/site/p/{i}.html`` form a binary tree: page ``i`` links to ``2i+1`` and
``2i+2`` (so its depth is ``floor(log2(i+1))``), to its parent, to itself (with
and without a fragment), and to its first child again in a non-normal form
(``/site/./p/…``). Every page shows ``/site/img/shared-logo.png``; page ``i``
also shows the images of case ``i % 12``:

==  =======================================================================
0   ``<img src>`` relative to the page
1   ``srcset`` with width descriptors and ``sizes`` (largest kept; not ``src``)
2   ``<picture><source srcset … 1x, … 2x>`` and its ``<img src>``
3   lazy loading: ``data-src`` (placeholder ``src`` is a data: URI),
    ``data-original``, ``data-srcset``
4   ``og:image`` (absolute, upper-case scheme, fragment) and ``twitter:image``
5   ``<link rel=icon>``, ``apple-touch-icon``, ``preload as=image``
6   inline ``style="background-image:url(…)"`` and a ``<style>`` element
7   ``<a href>`` straight to an image; a broken image (404)
8   ``<base href>``: a relative ``src`` resolved against it
9   ISO-8859-1 page (charset in the header) with ``é`` in an image path
10  Shift_JIS page (charset only in ``<meta>``) with Japanese in an image path
11  malformed upper-case markup, a fragment, ``srcset`` with commas in URLs, and
    ``<link rel=stylesheet>`` whose CSS has an image (``--css``) and a font
==  =======================================================================

What must never be fetched: ``/site/private/`` and ``/site/img/secret-*``
(robots.txt), ``/site/nofollow/`` (``rel=nofollow``). Traps, all linked from
page 0: an endless calendar, session-id URLs, ever-longer URLs, a redirect
loop, links to other schemes, a PDF, an 11 MiB page; page 1 links to the same
site under other host names (``localhost``, ``[::1]``) and to a metadata
address. ``/site/sitemap.xml`` (named in robots.txt) is an index whose sitemap
lists the tree plus three orphan pages reachable only from it.

:func:`site_image_urls` computes the image URLs a complete crawl must save,
from this description rather than from the HTML.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from aiohttp import web

from aiograb.testing._images import POOL_SIZE, content_type, image_bytes
from aiograb.testing._state import STATE

__all__ = [
    "DATA_URI_GIF",
    "ORPHANS",
    "add_site_routes",
    "plain_image_count",
    "site_depth",
    "site_image_urls",
    "site_page_urls",
]

ORPHANS = 3
CASES = 12
PLAIN_IMAGES_PER_PAGE = 5
DATA_URI_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
_HUGE_BYTES = 11 * 1024 * 1024
_LONG_SEGMENT = "x" * 300


def site_depth(i: int) -> int:
    """The link depth of page ``i`` from page 0."""
    return (i + 1).bit_length() - 1


def _case_images(i: int, *, all_sizes: bool = False) -> list[str]:
    """Paths (percent-encoded, normal form) of the images case ``i % 12`` shows."""
    img = "/site/img/"
    case = i % CASES
    if case == 0:
        return [f"{img}{i}-a.jpg"]
    if case == 1:
        sizes = ["s", "m", "l"] if all_sizes else ["l"]  # src is not in a w source set
        return [f"{img}{i}-{s}.jpg" for s in sizes]
    if case == 2:
        return [f"{img}{i}-{s}" for s in (["p1.webp"] if all_sizes else []) + ["p2.webp", "pf.jpg"]]
    if case == 3:
        extra = [f"{img}{i}-ds1.jpg"] if all_sizes else []
        return [f"{img}{i}-lazy.jpg", f"{img}{i}-orig.png", f"{img}{i}-ds2.jpg", *extra]
    if case == 4:
        return [f"{img}{i}-og.jpg", f"{img}{i}-tw.png"]
    if case == 5:
        return [f"{img}{i}-icon.png", f"{img}{i}-touch.png", f"{img}{i}-pre.webp"]
    if case == 6:
        return [f"{img}{i}-bg.jpg", f"{img}{i}-hero.png"]
    if case == 7:
        return [f"{img}{i}-full.jpg"]
    if case == 8:
        return [f"{img}{i}-base.jpg"]
    if case == 9:
        return [f"{img}{i}-{quote('café')}.jpg"]
    if case == 10:
        return [f"{img}{i}-{quote('写真')}.jpg"]
    extra = [f"{img}{i}-x1.jpg?a=1,2"] if all_sizes else []
    return [f"{img}{i}-upper.jpg", f"{img}{i}-frag.jpg", f"{img}{i}-x2.jpg?a=1,2", *extra]


def site_page_urls(
    base_url: str, pages: int, *, max_depth: int = 10, sitemaps: bool = False
) -> set[str]:
    """The tree pages (and orphans with ``sitemaps``) a crawl from page 0 fetches."""
    urls = {f"{base_url}/site/p/{i}.html" for i in range(pages) if site_depth(i) <= max_depth}
    if sitemaps:
        urls |= {f"{base_url}/site/orphan/{k}.html?from=sitemap&x=1" for k in range(ORPHANS)}
    return urls


def site_image_urls(
    base_url: str,
    pages: int,
    *,
    max_depth: int = 10,
    css: bool = False,
    all_sizes: bool = False,
    sitemaps: bool = False,
) -> set[str]:
    """Every image URL a complete crawl from ``/site/p/0.html`` saves (data: URIs aside)."""
    paths = {"/site/img/shared-logo.png"}
    for i in range(pages):
        if site_depth(i) > max_depth:
            continue
        paths.update(_case_images(i, all_sizes=all_sizes))
        if css and i % CASES == 11:
            paths.add(f"/site/img/{i}-css.png")
    if sitemaps:
        paths.update(f"/site/img/orphan-{k}.jpg" for k in range(ORPHANS))
    return {base_url + p for p in paths}


def plain_image_count(pages: int) -> int:
    return pages * PLAIN_IMAGES_PER_PAGE


# -- HTML ----------------------------------------------------------------------------------


def _links(i: int, pages: int) -> list[str]:
    out = [f'<a href="/site/p/{i}.html">this page</a>', '<a href="#top">top</a>']
    out.append(f'<a href="/site/p/{i}.html#again">this page again</a>')
    for child in (2 * i + 1, 2 * i + 2):
        if child < pages:
            out.append(f'<a href="/site/p/{child}.html">page {child}</a>')
    if 2 * i + 1 < pages:
        out.append(f'<a href="/site/./p/../p/{2 * i + 1}.html">first child, again</a>')
    if i:
        out.append(f'<a href="/site/p/{(i - 1) // 2}.html">up</a>')
    out.append(f'<a href="/site/nofollow/{i}.html" rel="nofollow">not for robots</a>')
    out.append(f'<a href="/site/private/{i}.html">private</a>')
    out.append(f'<img src="/site/img/secret-{i}.jpg" alt="disallowed by robots.txt">')
    return out


def _traps(i: int, host: str) -> list[str]:
    if i == 0:
        return [
            '<a href="/site/cal/2024/1">calendar</a>',
            '<a href="/site/session?sid=start">session</a>',
            '<a href="/site/long/start">long</a>',
            '<a href="/redirect-loop/7">loop</a>',
            '<a href="mailto:someone@example.org">mail</a>',
            '<a href="ftp://example.org/file">ftp</a>',
            '<a href="javascript:void(0)">js</a>',
            '<a href="/site/doc.pdf">a pdf</a>',
            '<a href="/site/huge.html">huge</a>',
            '<a href="http://exa mple.org/%zz">broken</a>',
        ]
    if i == 1:
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
        return [
            f'<a href="http://localhost:{port}/site/p/1.html">same site, other name</a>',
            f'<a href="http://[::1]:{port}/site/p/2.html">same site, IPv6</a>',
            '<a href="http://169.254.169.254/latest/meta-data/">metadata</a>',
            '<img src="http://169.254.169.254/latest/meta-data/x.png" alt="ssrf">',
        ]
    return []


def _case_html(i: int, host: str) -> tuple[list[str], list[str]]:
    """(head parts, body parts) of case ``i % 12``."""
    img = "/site/img/"
    case = i % CASES
    head: list[str] = []
    body: list[str]
    if case == 0:
        body = [f'<img src="../img/{i}-a.jpg" alt="Photo {i}">']
    elif case == 1:
        srcset = f"{img}{i}-s.jpg 320w, {img}{i}-l.jpg 1280w, {img}{i}-m.jpg 640w"
        body = [
            f'<img src="{img}{i}-small.jpg" srcset="{srcset}" '
            f'sizes="(max-width: 600px) 100vw, 50vw" alt="Responsive {i}">'
        ]
    elif case == 2:
        body = [
            f'<picture><source type="image/webp" srcset="{img}{i}-p1.webp 1x, '
            f'{img}{i}-p2.webp 2x"><img src="{img}{i}-pf.jpg" alt="Picture {i}"></picture>'
        ]
    elif case == 3:
        body = [
            f'<img class="lazy" src="{DATA_URI_GIF}" data-src="{img}{i}-lazy.jpg" alt="Lazy">',
            f'<div class="lazy" data-original="{img}{i}-orig.png"></div>',
            f'<img data-srcset="{img}{i}-ds1.jpg 1x, {img}{i}-ds2.jpg 2x" alt="Lazy set">',
        ]
    elif case == 4:
        head = [
            f'<meta property="og:image" content="HTTP://{host.upper()}{img}{i}-og.jpg#share">',
            f'<meta name="twitter:image" content="{img}{i}-tw.png">',
        ]
        body = []
    elif case == 5:
        head = [
            f'<link rel="icon" href="{img}{i}-icon.png">',
            f'<link rel="apple-touch-icon" href="{img}{i}-touch.png">',
            f'<link rel="preload" as="image" href="{img}{i}-pre.webp">',
            '<link rel="preload" as="script" href="/site/app.js">',
        ]
        body = []
    elif case == 6:
        head = [f"<style>.hero {{ background: url({img}{i}-hero.png) no-repeat }}</style>"]
        body = [f"<div style=\"background-image: url('{img}{i}-bg.jpg')\">styled</div>"]
    elif case == 7:
        body = [
            f'<a href="{img}{i}-full.jpg">full size</a>',
            f'<img src="{img}missing-{i}.jpg" alt="broken">',
        ]
    elif case == 8:
        head = ['<base href="/site/b/">']
        body = [f'<img src="../img/{i}-base.jpg" alt="Based">']
    elif case == 9:
        body = [f'<img src="{img}{i}-café.jpg" alt="Café crème {i}">']
    elif case == 10:
        head = ['<meta charset="shift_jis">']
        body = [f'<img src="{img}{i}-写真.jpg" alt="写真 {i}">']
    else:
        head = [f'<link rel="stylesheet" href="/site/css/{i}.css">']
        body = [
            f"<DIV><P>Unclosed <IMG SRC={img}{i}-upper.jpg ALT=Upper><b><i>",
            f'<img src="{img}{i}-frag.jpg#part" alt="Fragment">',
            f'<img srcset="{img}{i}-x1.jpg?a=1,2 1x, {img}{i}-x2.jpg?a=1,2 2x" alt="Commas">',
        ]
    return head, body


def page_html(i: int, pages: int, host: str) -> tuple[bytes, str]:
    """The body and Content-Type of page ``i``."""
    head, body = _case_html(i, host)
    parts = [
        "<!DOCTYPE html>\n<html><head><title>Page</title>",
        *head,
        f'</head><body><h1 id="top">Page {i}</h1>',
        '<img src="/site/img/shared-logo.png" alt="Logo">',
        *body,
        *_links(i, pages),
        *_traps(i, host),
        "</body></html>\n",
    ]
    text = "\n".join(parts)
    case = i % CASES
    if case == 9:
        return text.encode("iso-8859-1"), "text/html; charset=iso-8859-1"
    if case == 10:
        return text.encode("shift_jis"), "text/html"
    return text.encode(), "text/html; charset=utf-8"


def _simple_page(title: str, links: list[str], images: list[str]) -> web.Response:
    parts = [f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"]
    parts += [f'<a href="{u}">link</a>' for u in links]
    parts += [f'<img src="{u}" alt="{title}">' for u in images]
    parts.append("</body></html>")
    return web.Response(text="\n".join(parts), content_type="text/html")


# -- handlers ------------------------------------------------------------------------------


def _pages(request: web.Request) -> int:
    return request.app[STATE].config.site_pages


async def _robots(request: web.Request) -> web.StreamResponse:
    base = f"{request.scheme}://{request.host}"
    text = (
        "# aiograb test site\n"
        "User-agent: *\n"
        "Disallow: /site/private/\n"
        "Disallow: /site/img/secret-\n"
        "\n"
        "User-agent: BadBot\n"
        "Disallow: /\n"
        "\n"
        f"Sitemap: {base}/site/sitemap.xml\n"
    )
    return web.Response(text=text)


async def _page(request: web.Request) -> web.StreamResponse:
    i, pages = int(request.match_info["i"]), _pages(request)
    if i >= pages:
        raise web.HTTPNotFound(text=f"the site has {pages} pages\n")
    body, ctype = page_html(i, pages, request.host)
    return web.Response(body=body, headers={"Content-Type": ctype})


async def _site_img(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name.startswith("missing-"):
        raise web.HTTPNotFound(text="no such image\n")
    ext = name.rsplit(".", 1)[-1].lower()
    if ext not in ("jpg", "png", "webp", "gif"):
        ext = "png"
    n = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % POOL_SIZE
    return web.Response(body=image_bytes(n, ext), content_type=content_type(ext))


async def _css(request: web.Request) -> web.StreamResponse:
    i = int(request.match_info["i"])
    text = (
        f'.a {{ background: url("../img/{i}-css.png") }}\n'
        "@font-face { font-family: X; src: url(/site/font.woff2) format('woff2') }\n"
    )
    return web.Response(text=text, content_type="text/css")


async def _hidden(request: web.Request) -> web.StreamResponse:
    # /site/nofollow/{i}.html and /site/private/{i}.html: pages a crawl must not fetch.
    kind, i = request.match_info["kind"], request.match_info["i"]
    return _simple_page(kind, [], [f"/site/img/{kind}-{i}.jpg"])


async def _orphan(request: web.Request) -> web.StreamResponse:
    k = int(request.match_info["k"])
    return _simple_page("orphan", ["/site/p/0.html"], [f"/site/img/orphan-{k}.jpg"])


async def _calendar(request: web.Request) -> web.StreamResponse:
    y, m = int(request.match_info["y"]), int(request.match_info["m"])
    nxt = (y + m // 12, m % 12 + 1)
    prev = (y - (m == 1), 12 if m == 1 else m - 1)
    return _simple_page(
        "calendar", [f"/site/cal/{nxt[0]}/{nxt[1]}", f"/site/cal/{prev[0]}/{prev[1]}"], []
    )


async def _session(request: web.Request) -> web.StreamResponse:
    sid = request.query.get("sid", "")
    new = hashlib.sha256(sid.encode()).hexdigest()[:12]
    return _simple_page("session", [f"/site/session?sid={new}", f"/site/session?sid={sid}"], [])


async def _long(request: web.Request) -> web.StreamResponse:
    return _simple_page("long", [f"{request.path}/{_LONG_SEGMENT}"], [])


async def _pdf(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"%PDF-1.4\n%\xe2\xe3\n", content_type="application/pdf")


async def _huge_page(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "text/html"
    resp.content_length = _HUGE_BYTES
    try:
        await resp.prepare(request)
        block = b"<p>" + b"x" * (64 * 1024 - 3)
        for _ in range(_HUGE_BYTES // len(block)):
            await resp.write(block)
        await resp.write(b" " * (_HUGE_BYTES % len(block)))
    except ConnectionError:
        pass
    return resp


async def _sitemap_index(request: web.Request) -> web.StreamResponse:
    base = f"{request.scheme}://{request.host}"
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"<sitemap><loc>{base}/site/sitemap-pages.xml</loc></sitemap>\n"
        "</sitemapindex>\n"
    )
    return web.Response(text=text, content_type="application/xml")


async def _sitemap_pages(request: web.Request) -> web.StreamResponse:
    base = f"{request.scheme}://{request.host}"
    locs = [f"{base}/site/p/{i}.html" for i in range(min(_pages(request), 20))]
    locs += [f"{base}/site/orphan/{k}.html?from=sitemap&amp;x=1" for k in range(ORPHANS)]
    entries = "".join(f"<url><loc>{u}</loc></url>\n" for u in locs)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{entries}</urlset>\n'
    )
    return web.Response(text=text, content_type="application/xml")


async def _plain_page(request: web.Request) -> web.StreamResponse:
    """``/plain/p/{i}.html``: the benchmark site, 5 ``<img src>`` and tree links a page."""
    i, pages = int(request.match_info["i"]), _pages(request)
    if i >= pages:
        raise web.HTTPNotFound()
    links = [f"/plain/p/{c}.html" for c in (2 * i + 1, 2 * i + 2) if c < pages]
    if i:
        links.append(f"/plain/p/{(i - 1) // 2}.html")
    n = PLAIN_IMAGES_PER_PAGE
    images = [f"/plain/img/{i * n + k}.jpg" for k in range(n)]
    return _simple_page(f"Plain {i}", links, images)


async def _plain_img(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=image_bytes(int(request.match_info["n"]), "jpg"), content_type="image/jpeg"
    )


def add_site_routes(app: web.Application) -> None:
    """Add ``/robots.txt``, ``/site/...`` and ``/plain/...`` to the test server."""
    add = app.router.add_get
    add("/robots.txt", _robots)
    add(r"/site/p/{i:\d+}.html", _page)
    add("/site/img/{name}", _site_img)
    add(r"/site/css/{i:\d+}.css", _css)
    add(r"/site/{kind:nofollow|private}/{i:\d+}.html", _hidden)
    add(r"/site/orphan/{k:\d+}.html", _orphan)
    add(r"/site/cal/{y:\d+}/{m:\d+}", _calendar)
    add("/site/session", _session)
    add(r"/site/long/{tail:.+}", _long)
    add("/site/doc.pdf", _pdf)
    add("/site/huge.html", _huge_page)
    add("/site/sitemap.xml", _sitemap_index)
    add("/site/sitemap-pages.xml", _sitemap_pages)
    add(r"/plain/p/{i:\d+}.html", _plain_page)
    add(r"/plain/img/{n:\d+}.jpg", _plain_img)
