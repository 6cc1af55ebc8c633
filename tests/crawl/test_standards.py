"""Crawls of small real sites (aiohttp on port 0) whose markup, robots.txt and charsets are
what browsers accept: URLs (WHATWG), srcset (HTML Standard), robots.txt (RFC 9309),
charset labels (WHATWG Encoding), and the image scope."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from aiohttp import web

from aiograb import CrawlOptions, CrawlSummary, RequestPolicy, RetryPolicy, crawl_async
from aiograb.testing import image_bytes
from tests.helpers import manifest, run, serve_app

POLICY = RequestPolicy(retry=RetryPolicy(retries=0))
GIF = image_bytes(1, "gif")

Seen = list[tuple[str, str]]  # (Host header, raw path) of each request


def _site(
    pages: dict[str, tuple[bytes, str]], robots: bytes | None = None
) -> tuple[web.Application, Seen]:
    """An app serving ``pages`` (path -> body, content type), ``robots`` at /robots.txt
    (404 when None), and a GIF at every other path; it records every request."""
    seen: Seen = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((request.host, request.raw_path))
        if request.path == "/robots.txt":
            if robots is None:
                return web.Response(status=404)
            return web.Response(body=robots, content_type="text/plain")
        if request.path in pages:
            body, ctype = pages[request.path]
            body = body.replace(b"@PORT@", str(request.url.port).encode())  # this server's port
            return web.Response(body=body, headers={"Content-Type": ctype})
        return web.Response(body=GIF, content_type="image/gif")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app, seen


def _crawl(
    app: web.Application, out: Path, options: CrawlOptions, policy: RequestPolicy = POLICY
) -> CrawlSummary:
    """Crawl ``app`` (served once: an app belongs to one event loop) from its ``/``."""

    async def main() -> CrawlSummary:
        async with serve_app(app) as origin:
            return await crawl_async(origin + "/", out, options=options, policy=policy)

    return run(main())


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    return {r["url"]: r for r in manifest(out)}


def _paths(seen: Seen) -> list[str]:
    return [path for _host, path in seen if path not in ("/", "/robots.txt")]


# -- srcset, sizes, <picture>, and URLs as browsers read them (#9 items 8, 9) -------------

SRCSET_PAGE = """<!doctype html><meta charset="utf-8">
<img src="images\\photo.jpg" alt="backslash">
<img srcset="/nb/a\u00a0b.jpg 2x, /nb/c.jpg 1x">
<img srcset="/id/\u5199\u3000\u771f.jpg 3x, /id/small.jpg">
<img srcset="/bad/a.jpg 2x 3x, /bad/b.jpg 1x, /bad/c.jpg (1x, 2x) 5x">
<img src="/w/fallback.jpg" srcset="/w/s.jpg 400w, /w/l.jpg 1600w, /w/m.jpg 800w"
     sizes="(max-width: 600px) 100vw, 800px">
<video><source srcset="/video/poster.jpg 2x"></video>
<picture><source srcset="/pic/1.webp 1x, /pic/2.webp 2x"><img src="/pic/f.jpg"></picture>
<img src="/sig.jpg?X-Sig=ab%2Fcd%3D&q=a b+c">
""".encode()


def test_srcset_and_urls_are_read_as_browsers_read_them(tmp_path: Path) -> None:
    app, seen = _site({"/": (SRCSET_PAGE, "text/html")})
    _crawl(app, tmp_path / "largest", CrawlOptions())
    assert sorted(_paths(seen)) == sorted(
        [
            "/images/photo.jpg",  # not /images%5Cphoto.jpg
            "/nb/a%C2%A0b.jpg",  # U+00A0 is part of the URL, not a separator
            "/id/%E5%86%99%E3%80%80%E7%9C%9F.jpg",  # so is U+3000
            "/bad/b.jpg",  # the candidates with invalid descriptors are dropped
            "/w/l.jpg",  # the largest density: 1600w / 800px
            "/pic/2.webp",  # <source> in <picture> counts; in <video> it does not
            "/pic/f.jpg",
            "/sig.jpg?X-Sig=ab%2Fcd%3D&q=a%20b+c",  # %2F kept, space is %20, + kept
        ]
    )
    app, seen = _site({"/": (SRCSET_PAGE, "text/html")})
    _crawl(app, tmp_path / "all", CrawlOptions(all_sizes=True))
    assert sorted(_paths(seen)) == sorted(
        [
            "/images/photo.jpg",
            "/nb/a%C2%A0b.jpg",
            "/nb/c.jpg",
            "/id/%E5%86%99%E3%80%80%E7%9C%9F.jpg",
            "/id/small.jpg",
            "/bad/b.jpg",
            "/w/s.jpg",
            "/w/l.jpg",
            "/w/m.jpg",  # and not /w/fallback.jpg: src is not in a source set with widths
            "/pic/1.webp",
            "/pic/2.webp",
            "/pic/f.jpg",
            "/sig.jpg?X-Sig=ab%2Fcd%3D&q=a%20b+c",
        ]
    )


# -- robots.txt per RFC 9309 (#9 item 10) --------------------------------------------------

ROBOTS_PAGE = b'<a href="/private/p.html">p</a><img src="/private/x.jpg"><img src="/pub.jpg">'


def _robots_crawl(robots: bytes, out: Path, token: str = "aiograb") -> dict[str, str | None]:
    """The error class of each path a crawl of a site with this robots.txt saw."""
    pages = {"/": (ROBOTS_PAGE, "text/html"), "/private/p.html": (b"<p>", "text/html")}
    app, _seen = _site(pages, robots)
    _crawl(app, out, CrawlOptions(), dataclasses.replace(POLICY, user_agent_token=token))
    return {"/" + url.split("/", 3)[3]: row["error"] for url, row in _rows(out).items()}


def test_robots_txt_with_a_bom_keeps_its_first_group(tmp_path: Path) -> None:
    robots = b"\xef\xbb\xbfUser-agent: aiograb\nDisallow: /private/\n"
    errors = _robots_crawl(robots, tmp_path)
    assert errors == {
        "/": None,
        "/pub.jpg": None,
        "/private/x.jpg": "robots_disallowed",
        "/private/p.html": "robots_disallowed",
    }


def test_robots_groups_are_matched_by_product_token(tmp_path: Path) -> None:
    # "ai" and "image" are words of aiograb's User-Agent header; they are not its token.
    robots = b"User-agent: ai\nDisallow: /\n\nUser-agent: image\nDisallow: /\n\nUser-agent: *\n"
    robots += b"Disallow: /private/\n"
    errors = _robots_crawl(robots, tmp_path / "a")
    assert errors["/"] is None
    assert errors["/pub.jpg"] is None
    assert errors["/private/x.jpg"] == "robots_disallowed"  # the * group applies
    # Another token picks its own group (case-insensitive, version ignored).
    mine = b"User-agent: MyBot/2.1\nDisallow: /pub\n\nUser-agent: *\nDisallow: /\n"
    errors = _robots_crawl(mine, tmp_path / "b", token="mybot")
    assert errors["/"] is None
    assert errors["/pub.jpg"] == "robots_disallowed"
    assert errors["/private/x.jpg"] is None


def test_an_unknown_robots_line_does_not_end_a_group(tmp_path: Path) -> None:
    robots = b"User-agent: aiograb\nSome-extension: 1\nUser-agent: otherbot\nDisallow: /private/\n"
    robots += b"\nUser-agent: *\nDisallow: /\n"
    errors = _robots_crawl(robots, tmp_path)
    assert errors["/"] is None
    assert errors["/pub.jpg"] is None
    assert errors["/private/x.jpg"] == "robots_disallowed"


# -- charset labels per the WHATWG Encoding Standard (#9 item 11) --------------------------


def test_unknown_charset_labels_fall_back_to_the_next_source(tmp_path: Path) -> None:
    koi8 = '<meta charset="koi8-r"><img src="/ф.jpg">'.encode("koi8-r")
    pages = {
        "/": (b'<a href="/a">a</a><a href="/b">b</a><a href="/c">c</a>', "text/html"),
        "/a": ('<img src="/é-a.jpg">'.encode(), "text/html; charset=rot13"),
        "/b": (koi8, "text/html; charset=undefined"),
        "/c": ('<meta charset="base64"><img src="/é-c.jpg">'.encode(), "text/html; charset=idna"),
    }
    app, seen = _site(pages)
    _crawl(app, tmp_path, CrawlOptions())
    rows = _rows(tmp_path)
    assert all(r["state"] == "ok" for r in rows.values()), rows
    assert sorted(p for p in _paths(seen) if p.endswith(".jpg")) == [
        "/%C3%A9-a.jpg",
        "/%C3%A9-c.jpg",
        "/%D1%84.jpg",
    ]


# -- the image scope (#9 item 12) -----------------------------------------------------------


IMAGES_PAGE = b"""<img src="/own.jpg"><img src="/thumbs/t.jpg"><img src="/big.png">
<img src="http://localhost:@PORT@/cdn.jpg">"""


def _image_crawl(out: Path, **changes: Any) -> tuple[dict[str, str | None], Seen]:
    """The error class of each image of IMAGES_PAGE, and the requests made."""
    app, seen = _site({"/": (IMAGES_PAGE, "text/html")}, robots=b"User-agent: *\nAllow: /\n")
    _crawl(app, out, CrawlOptions(allow_private=True, **changes))
    rows = manifest(out)
    return {r["url"].rsplit("/", 1)[1]: r["error"] for r in rows if r.get("kind") == "image"}, seen


def test_image_scope_include_and_exclude(tmp_path: Path) -> None:
    everything, seen = _image_crawl(tmp_path / "any")
    assert everything == {"own.jpg": None, "t.jpg": None, "big.png": None, "cdn.jpg": None}
    assert {host.split(":")[0] for host, path in seen if path == "/robots.txt"} == {
        "127.0.0.1",
        "localhost",
    }
    on_site, seen = _image_crawl(tmp_path / "host", image_scope="host", image_exclude=("/thumbs/",))
    assert on_site == {
        "own.jpg": None,
        "t.jpg": "excluded",
        "big.png": None,
        "cdn.jpg": "out_of_scope",
    }
    # robots.txt only for the hosts requested: localhost served no image, so no robots.txt.
    assert {host.split(":")[0] for host, _path in seen} == {"127.0.0.1"}
    assert sorted(_paths(seen)) == ["/big.png", "/own.jpg"]
    pngs, seen = _image_crawl(tmp_path / "png", image_include=(r"\.png$",))
    assert pngs == {
        "own.jpg": "excluded",
        "t.jpg": "excluded",
        "big.png": None,
        "cdn.jpg": "excluded",
    }
    assert {host.split(":")[0] for host, _path in seen} == {"127.0.0.1"}
