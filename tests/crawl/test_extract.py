"""The crawl's pure parts: extraction, srcset, scope, the address guard (URLs: tests/core)."""

from __future__ import annotations

import gzip

import pytest

from aiograb import BlockedAddress, CrawlOptions, FakeClock, Limits, UsageError
from aiograb._core.errors import InvalidURL
from aiograb._crawl.datauri import decode_data_uri
from aiograb._crawl.extract import (
    decode_html,
    extract_css,
    extract_html,
    extract_sitemap,
    parse_srcset,
)
from aiograb._crawl.scope import Scope, registrable_domain
from aiograb._crawl.srcset import largest, parse_sizes, source_set
from aiograb._fetch.politeness import Politeness
from aiograb._http.addresses import address_policy, is_blocked_address
from tests.helpers import run


def found(html: str, **kwargs: bool) -> list[tuple[str, str, str | None]]:
    page = extract_html(html.encode(), "text/html", **kwargs)
    return [(f.url, f.kind, f.alt) for f in page.found]


def urls(html: str, **kwargs: bool) -> set[str]:
    return {u for u, _kind, _alt in found(html, **kwargs)}


# -- srcset ----------------------------------------------------------------------------------


def _candidates(value: str) -> list[tuple[str, str, float]]:
    return [(c.url, c.unit, c.value) for c in parse_srcset(value)]


def test_srcset_parsing_follows_the_html_algorithm() -> None:
    assert _candidates("a.jpg 100w, b.jpg?x=1,2 200w") == [
        ("a.jpg", "w", 100.0),
        ("b.jpg?x=1,2", "w", 200.0),
    ]
    assert _candidates(" a.jpg, b.jpg 2x,c.jpg 1.5x ") == [
        ("a.jpg", "x", 1.0),
        ("b.jpg", "x", 2.0),
        ("c.jpg", "x", 1.5),
    ]
    assert _candidates("a.jpg,, b.jpg 3x") == [("a.jpg", "x", 1.0), ("b.jpg", "x", 3.0)]
    assert _candidates("") == []


def test_srcset_keeps_the_largest_candidate_or_all() -> None:
    html = '<img src="f.jpg" srcset="s.jpg 320w, l.jpg 1280w, m.jpg 640w" sizes="50vw" alt="A">'
    assert found(html) == [("l.jpg", "image", "A")]
    # Exactly the source set: with width descriptors, src is not in it (it was before).
    assert urls(html, all_sizes=True) == {"s.jpg", "m.jpg", "l.jpg"}
    # Density descriptors without a 1x: src is the 1x candidate.
    assert urls('<img src="one.jpg" srcset="two.jpg 2x">') == {"two.jpg"}
    assert urls('<img src="one.jpg" srcset="half.jpg 0.5x">') == {"one.jpg"}
    assert urls('<img src="one.jpg" srcset="two.jpg 2x">', all_sizes=True) == {"one.jpg", "two.jpg"}
    assert urls('<img src="one.jpg" srcset="a.jpg 1x, b.jpg 2x">', all_sizes=True) == {
        "a.jpg",
        "b.jpg",
    }
    # No valid candidate at all: src is the image.
    assert urls('<img src="one.jpg" srcset="bad.jpg 0w">') == {"one.jpg"}


@pytest.mark.parametrize(
    ("srcset", "valid"),
    [
        # only ASCII whitespace separates: U+00A0 and U+3000 are part of the URL
        ("a\u00a0b.jpg 2x, c.jpg 1x", [("a\u00a0b.jpg", "x", 2.0), ("c.jpg", "x", 1.0)]),
        ("\u5199\u3000\u771f.jpg 2x", [("\u5199\u3000\u771f.jpg", "x", 2.0)]),
        ("a.jpg\u00a01x, b.jpg 2x", [("a.jpg\u00a01x", "x", 1.0), ("b.jpg", "x", 2.0)]),
        ("\ta.jpg\n2x\f,\rb.jpg 3x", [("a.jpg", "x", 2.0), ("b.jpg", "x", 3.0)]),
        # a comma inside parentheses does not end the candidate; the descriptor is invalid
        ("a.jpg (1x, 2x) 3x, b.jpg 2x", [("b.jpg", "x", 2.0)]),
        # a URL ending in commas has no descriptors; commas inside a URL stay
        ("a.jpg,, b.jpg,c.jpg 2x", [("a.jpg", "x", 1.0), ("b.jpg,c.jpg", "x", 2.0)]),
        ("data:image/gif;base64,R0lG 1x", [("data:image/gif;base64,R0lG", "x", 1.0)]),
        # invalid or repeated descriptors drop the candidate
        (
            "a.jpg 2x 3x, b.jpg 100w 200w, c.jpg 100w 1x, d.jpg 1x 100w, e.jpg 5x",
            [("e.jpg", "x", 5.0)],
        ),
        ("a.jpg 0w, b.jpg -1x, c.jpg 1.x, d.jpg +1x, e.jpg 1X, f.jpg 10W, g.jpg 2", []),
        ("a.jpg 100h, b.jpg 1x 100h, c.jpg 100w 100h, d.jpg 100w 0h", [("c.jpg", "w", 100.0)]),
        (
            "a.jpg 1.5w, b.jpg 1e1x, c.jpg .5x, d.jpg 0x",
            [("b.jpg", "x", 10.0), ("c.jpg", "x", 0.5), ("d.jpg", "x", 0.0)],
        ),
        ("a.jpg foo, b.jpg 2x", [("b.jpg", "x", 2.0)]),
    ],
)
def test_srcset_candidates_per_the_standard(
    srcset: str, valid: list[tuple[str, str, float]]
) -> None:
    assert _candidates(srcset) == valid


def test_largest_is_by_density_with_sizes() -> None:
    # Later candidates of an earlier density are removed.
    assert [c.url for c in source_set("a.jpg 1x, b.jpg 2x, c.jpg 2x")] == ["a.jpg", "b.jpg"]
    # w candidates: density = width / the effective size (viewport 1920 px).
    mixed = source_set("w.jpg 1920w, x.jpg 1.5x", sizes="(max-width: 600px) 100vw, 960px")
    assert [(c.url, c.density) for c in mixed] == [("w.jpg", 2.0), ("x.jpg", 1.5)]
    assert largest(mixed).url == "w.jpg"  # type: ignore[union-attr]
    full = source_set("w.jpg 1920w, x.jpg 1.5x")  # no sizes: 100vw, density 1
    assert largest(full).url == "x.jpg"  # type: ignore[union-attr]
    assert parse_sizes("(min-width: 2000px) 10px, (min-width: 36em) 33.3vw, 100vw") == (
        pytest.approx(639.36)
    )
    assert parse_sizes("calc(100vw - 2em), 300px") == 300.0  # calc() is not understood here
    assert parse_sizes("(orientation: portrait) 10px, 50vw") == 960.0
    assert parse_sizes("-5px, 12em") == 192.0
    assert parse_sizes("") == 1920.0


def test_source_counts_only_inside_picture() -> None:
    html = """<video><source srcset="/v.jpg 2x" src="/v.mp4"></video>
      <picture><source srcset="/p.webp 1x, /p2.webp 2x" sizes="10px"><img src="/f.jpg"></picture>
      <audio><source srcset="/a.jpg"></audio>"""
    assert urls(html) == {"/p2.webp", "/f.jpg"}


def test_every_kind_of_image_reference_is_found() -> None:
    html = """<html><head>
      <meta property="og:image" content="/og.jpg"><meta name="twitter:image" content="/tw.png">
      <meta property="og:title" content="not an image">
      <link rel="icon" href="/icon.png"><link rel="apple-touch-icon" href="/touch.png">
      <link rel="preload" as="image" href="/pre.webp"><link rel="preload" as="font" href="/f.woff2">
      <link rel="stylesheet" href="/s.css">
      <style>.h { background: url("/style-el.png") }</style>
    </head><body>
      <picture><source srcset="/p1.webp 1x, /p2.webp 2x"><img src="/pf.jpg" alt="Pic"></picture>
      <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/lazy.jpg" alt="Lazy">
      <div data-original="/orig.png" data-srcset="/ds1.jpg 1x, /ds2.jpg 2x"></div>
      <div style="background-image:url('/bg.jpg')"></div>
      <video poster="/poster.jpg"></video><input type="image" src="/button.png">
      <a href="/full.JPG">full</a><a href="/page">page</a>
    </body></html>"""
    assert found(html) == [
        ("/og.jpg", "image", None),
        ("/tw.png", "image", None),
        ("/icon.png", "image", None),
        ("/touch.png", "image", None),
        ("/pre.webp", "image", None),
        ("/style-el.png", "image", None),
        ("/p2.webp", "image", "Pic"),
        ("/pf.jpg", "image", "Pic"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "data", "Lazy"),
        ("/lazy.jpg", "image", "Lazy"),
        ("/ds2.jpg", "image", None),
        ("/orig.png", "image", None),
        ("/bg.jpg", "image", None),
        ("/poster.jpg", "image", None),
        ("/button.png", "image", None),
        ("/full.JPG", "image", None),
        ("/page", "page", None),
    ]
    assert ("/s.css", "css", None) in found(html, css=True)


def test_malformed_and_upper_case_markup() -> None:
    html = "<DIV><P>text <IMG SRC=/upper.jpg ALT=Upper><b><i><a href=/next>next"
    assert found(html) == [("/upper.jpg", "image", "Upper"), ("/next", "page", None)]
    assert found("") == []
    assert found("<img src=''><img>") == []


def test_nofollow_links_and_pages() -> None:
    page = extract_html(b'<a href="/a" rel="external nofollow">a</a><a href="/b">b</a>', None)
    assert [(f.url, f.nofollow) for f in page.found] == [("/a", True), ("/b", False)]
    meta = b'<meta name="robots" content="noindex, nofollow"><a href="/c">c</a>'
    assert [f.nofollow for f in extract_html(meta, None).found] == [True]
    followed = extract_html(meta, None, follow_nofollow=True)
    assert [f.nofollow for f in followed.found] == [False]


def test_base_href_is_reported() -> None:
    assert extract_html(b'<base href="/b/"><base href="/c/"><img src="x.jpg">', None).base == "/b/"


@pytest.mark.parametrize(
    ("body", "ctype", "codec", "text"),
    [
        ("café".encode("iso-8859-1"), "text/html; charset=ISO-8859-1", "windows-1252", "café"),
        (
            b'<meta charset="shift_jis">' + "写真".encode("shift_jis"),
            "text/html",
            "shift_jis",
            "写真",
        ),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
            + "ф".encode("koi8-r"),
            None,
            "koi8-r",
            "ф",
        ),
        (b"\xef\xbb\xbfcaf\xc3\xa9", "text/html; charset=latin-1", "utf-8", "café"),
        ("é".encode(), 'text/html; charset="nonsense"', "utf-8", "é"),
        (b"\xff\xfe broken", None, "utf-16le", ""),
        # unknown or unsupported labels (WHATWG Encoding Standard) fall to the next source
        ("é".encode(), "text/html; charset=rot13", "utf-8", "é"),
        (b'<meta charset="base64"><p>' + "é".encode(), "text/html; charset=idna", "utf-8", "é"),
        (
            b'<meta charset="koi8-r">' + "ф".encode("koi8-r"),
            "text/html; charset=undefined",
            "koi8-r",
            "ф",
        ),
        # no label at all, and not UTF-8: windows-1252
        ("naïve €".encode("cp1252"), None, "windows-1252", "naïve €"),
        # a header may say UTF-16; a meta tag cannot
        ("é".encode("utf-16-le"), "text/html; charset=utf-16", "utf-16le", "é"),
        (b'<meta charset="utf-16">' + "é".encode(), None, "utf-8", "é"),
        (b'<meta charset="x-user-defined">\xe9', None, "windows-1252", "é"),
        ("café".encode("iso-8859-1"), "text/html; charset=latin1", "windows-1252", "café"),
    ],
)
def test_html_decoding_order(body: bytes, ctype: str | None, codec: str, text: str) -> None:
    decoded, name = decode_html(body, ctype)
    assert name == codec
    assert text in decoded


def test_css_images_imports_and_fonts() -> None:
    css = """@import "more.css"; @import url(other.css);
      .a { background: url( 'x.png' ) } .b { background-image: url(y.jpg?v=2) }
      .c { src: url(/f.woff2) format('woff2'), url(f.ttf) } .d { mask: url(#m) }"""
    out = extract_css(css)
    assert out.images == ["x.png", "y.jpg?v=2"]
    assert out.imports == ["more.css", "other.css"]


def test_sitemaps_plain_gzip_and_index() -> None:
    body = b"<urlset><url><loc> https://a.org/x?a=1&amp;b=2 </loc></url><url><loc>/y</loc></url>"
    assert extract_sitemap(body) == (["https://a.org/x?a=1&b=2", "/y"], False)
    index = b'<?xml version="1.0"?><sitemapindex><sitemap><loc>https://a.org/s1.xml</loc>'
    assert extract_sitemap(gzip.compress(index)) == (["https://a.org/s1.xml"], True)
    assert extract_sitemap(b"\x1f\x8bnot gzip at all") == ([], False)


def test_data_uris() -> None:
    assert decode_data_uri("data:image/png;base64,iVBORw0K") == (b"\x89PNG\r\n", "image/png")
    assert decode_data_uri("data:,a%20b") == (b"a b", "text/plain")
    with pytest.raises(InvalidURL) as err:
        decode_data_uri("data:image/png;base64,***")
    assert err.value.code == "invalid_data_uri"


# -- URLs and scope ----------------------------------------------------------------------------


def test_registrable_domains() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("www.example.org") == "example.org"
    assert registrable_domain("user.github.io") == "user.github.io"
    assert registrable_domain("127.0.0.1") == "127.0.0.1"
    assert registrable_domain("localhost") == "localhost"


def test_scope_host_domain_any() -> None:
    seeds = ["www.example.org"]
    domain = Scope(CrawlOptions(), seeds)
    assert domain.in_scope("img.example.org")
    assert not domain.in_scope("example.com")
    host = Scope(CrawlOptions(scope="host"), seeds)
    assert host.in_scope("WWW.example.org")
    assert not host.in_scope("img.example.org")
    assert Scope(CrawlOptions(scope="any"), seeds).in_scope("anything.net")


def test_follow_decisions_and_their_classes() -> None:
    scope = Scope(
        CrawlOptions(max_depth=2, include=("/photos/",), exclude=(r"\?sort=",)), ["a.org"]
    )
    ok = "http://a.org/photos/1"
    assert scope.follow(ok, "a.org", 2, False) is None
    cases = [
        (("http://b.org/photos/1", "b.org", 1, False), "out_of_scope"),
        (("http://a.org/blog/1", "a.org", 1, False), "excluded"),
        (("http://a.org/photos/?sort=asc", "a.org", 1, False), "excluded"),
        ((ok, "a.org", 1, True), "nofollow"),
        ((ok, "a.org", 3, False), "depth_limit"),
    ]
    for args, code in cases:
        verdict = scope.follow(*args)
        assert verdict is not None
        assert verdict.code == code


@pytest.mark.parametrize(
    "kwargs",
    [{"scope": "site"}, {"max_depth": -1}, {"include": ("(",)}, {"max_url_length": 10}],
)
def test_bad_options_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        CrawlOptions(**kwargs)  # type: ignore[arg-type]


# -- the address guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "not an address",
    ],
)
def test_blocked_addresses(address: str) -> None:
    assert is_blocked_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "172.32.0.1", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked_address(address)


def test_address_policy_allows_only_seed_hosts() -> None:
    check = address_policy(["127.0.0.1", "[::1]"])
    check("127.0.0.1", "127.0.0.1")
    check("::1", "::1")
    check("example.org", "93.184.216.34")
    with pytest.raises(BlockedAddress) as err:
        check("localhost", "127.0.0.1")  # a name that resolves to loopback: refused
    assert err.value.code == "blocked_address"
    assert not err.value.retryable


def test_crawl_delay_spaces_requests_to_one_host() -> None:
    clock = FakeClock()

    async def main() -> list[float]:
        politeness = Politeness(Limits(per_host=0), clock)
        politeness.set_delay("slow.org", 2.0)
        starts = []
        for host in ("slow.org", "slow.org", "fast.org", "slow.org"):
            async with politeness.slot(host):
                starts.append(clock.now())
        return starts

    t0 = clock.now()
    assert [t - t0 for t in run(main())] == [0.0, 2.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff" * 5000,
        b"<" * 10000,
        b"<div>" * 5000 + b"<img src=deep.jpg>",
        b'<img src="' + b"a" * 100_000 + b'">',
        b"<img srcset=', , ,, 10w x'><a href><link rel><meta content><style>url(</style>",
        "<img src='\ud800.jpg'>".encode("utf-8", "surrogatepass"),
    ],
)
def test_hostile_markup_never_raises(body: bytes) -> None:
    page = extract_html(body, "text/html; charset=utf-8", all_sizes=True, css=True)
    assert isinstance(page.found, list)
    assert all(f.url for f in page.found)
