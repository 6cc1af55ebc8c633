"""The crawl's pure parts: extraction, URL normal form, scope, the address guard."""

from __future__ import annotations

import gzip

import pytest
from yarl import URL

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
from aiograb._crawl.scope import Scope, normalize_url, registrable_domain
from aiograb._fetch.politeness import Politeness
from aiograb._http.addresses import address_policy, is_blocked_address
from tests.helpers import run


def found(html: str, **kwargs: bool) -> list[tuple[str, str, str | None]]:
    page = extract_html(html.encode(), "text/html", **kwargs)
    return [(f.url, f.kind, f.alt) for f in page.found]


def urls(html: str, **kwargs: bool) -> set[str]:
    return {u for u, _kind, _alt in found(html, **kwargs)}


# -- srcset ----------------------------------------------------------------------------------


def test_srcset_parsing_follows_the_html_algorithm() -> None:
    assert parse_srcset("a.jpg 100w, b.jpg?x=1,2 200w") == [
        ("a.jpg", "w", 100.0),
        ("b.jpg?x=1,2", "w", 200.0),
    ]
    assert parse_srcset(" a.jpg, b.jpg 2x,c.jpg 1.5x ") == [
        ("a.jpg", "x", 1.0),
        ("b.jpg", "x", 2.0),
        ("c.jpg", "x", 1.5),
    ]
    assert parse_srcset("a.jpg,, b.jpg 3x") == [("a.jpg", "x", 1.0), ("b.jpg", "x", 3.0)]
    assert parse_srcset("") == []


def test_srcset_keeps_the_largest_candidate_or_all() -> None:
    html = '<img src="f.jpg" srcset="s.jpg 320w, l.jpg 1280w, m.jpg 640w" sizes="50vw" alt="A">'
    assert found(html) == [("l.jpg", "image", "A")]
    assert urls(html, all_sizes=True) == {"s.jpg", "m.jpg", "l.jpg", "f.jpg"}
    # Density descriptors without a 1x: src is the 1x candidate.
    assert urls('<img src="one.jpg" srcset="two.jpg 2x">') == {"two.jpg"}
    assert urls('<img src="one.jpg" srcset="half.jpg 0.5x">') == {"one.jpg"}


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
        ("café".encode("iso-8859-1"), "text/html; charset=ISO-8859-1", "cp1252", "café"),
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
        (b"\xff\xfe broken", None, "utf-16", ""),
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


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("HTTP://Example.ORG:80/a/../b%7e#top", "http://example.org/b~"),
        ("https://b.com", "https://b.com/"),
        ("https://b.com:443?q=1", "https://b.com/?q=1"),
        ("http://bücher.de/Straße", "http://xn--bcher-kva.de/Stra%C3%9Fe"),
        ("http://a.org/%e2%82%ac/%2f", "http://a.org/%E2%82%AC/%2F"),
        ("  http://a.org/x\n.jpg ", "http://a.org/x.jpg"),
        ("http://a.org:8080/", "http://a.org:8080/"),
        ("http://a.org?x=1/y", "http://a.org/?x=1/y"),
        ("http://[::1]:8080", "http://[::1]:8080/"),
    ],
)
def test_normal_form(text: str, normal: str) -> None:
    assert normalize_url(text) == normal


def test_relative_urls_resolve_against_the_base() -> None:
    base = URL("http://a.org/dir/page.html")
    assert normalize_url("../x.jpg", base) == "http://a.org/x.jpg"
    assert normalize_url("//cdn.a.org/y.png", base) == "http://cdn.a.org/y.png"
    assert normalize_url("?p=2", base) == "http://a.org/dir/page.html?p=2"
    assert normalize_url("#frag", base) == "http://a.org/dir/page.html"
    assert normalize_url("café.jpg", base) == "http://a.org/dir/caf%C3%A9.jpg"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("mailto:a@b.org", "unsupported_scheme"),
        ("javascript:void(0)", "unsupported_scheme"),
        ("ftp://a.org/f", "unsupported_scheme"),
        ("http://user:pw@a.org/", "invalid_url"),
        ("http://exa mple.org/", "invalid_url"),
    ],
)
def test_bad_links_raise_with_their_class(text: str, code: str) -> None:
    with pytest.raises(InvalidURL) as err:
        normalize_url(text, URL("http://a.org/"))
    assert err.value.code == code


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
