"""The one URL normal form (the WHATWG URL Standard's), and that it is what goes on the wire.

Cases are from the URL Standard's text and examples (and the WPT cases it points
to); each says what a browser does with the URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from aiograb import RequestPolicy, RetryPolicy, download_async
from aiograb._core.errors import InvalidURL
from aiograb._core.urls import MAX_URL_LENGTH, host_of, normalize, parse_url, url_key
from tests.helpers import manifest, run, serve_app

BASE = "http://a.org/dir/page.html"


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        # scheme and host lower-case, default port dropped, empty path is "/", no fragment
        ("HTTP://Example.ORG:80/a/../b%7e#top", "http://example.org/b%7e"),
        ("https://b.com", "https://b.com/"),
        ("https://b.com:443?q=1", "https://b.com/?q=1"),
        ("http://a.org:0080/", "http://a.org/"),
        ("http://a.org:8080/", "http://a.org:8080/"),
        ("http://a.org?x=1/y", "http://a.org/?x=1/y"),
        ("http://a.org?", "http://a.org/?"),
        ("http://a.org/x#", "http://a.org/x"),
        # tabs and newlines anywhere are removed; leading/trailing C0 and space trimmed
        ("  http://a.org/x\n.jpg ", "http://a.org/x.jpg"),
        ("\t\nhttp://ex\tample.com/a\nb", "http://example.com/ab"),
        ("\x00\x1f http://a.org/ \x01", "http://a.org/"),
        # backslashes are slashes in special schemes; extra slashes before the host are dropped
        ("http:\\\\a.org\\x\\y.jpg", "http://a.org/x/y.jpg"),
        ("http:/example.com/", "http://example.com/"),
        ("http:///example.com", "http://example.com/"),
        ("http:example.com", "http://example.com/"),
        ("https://example.org//x", "https://example.org//x"),
        # IPv4 in any number form, dotted-decimal out
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0300.0250.0.1/", "http://192.168.0.1/"),
        ("http://192.168.257/", "http://192.168.1.1/"),
        ("http://4294967295/", "http://255.255.255.255/"),
        ("http://0x/", "http://0.0.0.0/"),
        ("http://example.1a/", "http://example.1a/"),  # the last label is no number: a domain
        # IPv6 literals validated and compressed, lower-case
        ("http://[::1]:8080", "http://[::1]:8080/"),
        ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
        ("http://[2001:DB8::1]:8080", "http://[2001:db8::1]:8080/"),
        ("http://[::ffff:192.168.0.1]/", "http://[::ffff:c0a8:1]/"),
        ("http://[::127.0.0.1]/", "http://[::7f00:1]/"),
        # IDNA per UTS #46: mapped, ignored code points dropped, nontransitional
        ("https://bücher.de/x.png", "https://xn--bcher-kva.de/x.png"),
        ("http://bücher.de/Straße", "http://xn--bcher-kva.de/Stra%C3%9Fe"),
        ("http://ex\u00adample.com/", "http://example.com/"),  # soft hyphen: ignored
        ("http://a\u200bb.org/", "http://ab.org/"),  # zero-width space: ignored
        ("http://ＥＸＡＭＰＬＥ.com/", "http://example.com/"),  # full-width: mapped
        ("http://example\u3002com/", "http://example.com/"),  # ideographic full stop
        ("http://faß.de/", "http://xn--fa-hia.de/"),
        ("http://a%41.org/", "http://aa.org/"),  # the host is percent-decoded first
        ("http://a_b.org/", "http://a_b.org/"),
        # percent-encoding is preserved as given: never decoded, never case-folded
        ("http://a.org/%e2%82%ac/%2f", "http://a.org/%e2%82%ac/%2f"),
        ("http://a.org/%2F%2f?x=%2F&y=a+b%20c", "http://a.org/%2F%2f?x=%2F&y=a+b%20c"),
        ("http://a.org/p?x=%zz&y=%", "http://a.org/p?x=%zz&y=%"),
        ("http://a.org/%00", "http://a.org/%00"),
        # ... and only what the encode sets name is encoded (UTF-8), space as %20, never "+"
        ("https://example.org/a b.jpg", "https://example.org/a%20b.jpg"),
        ("http://a.org/?q=a b", "http://a.org/?q=a%20b"),
        ("http://a.org/é?é", "http://a.org/%C3%A9?%C3%A9"),
        ("http://a.org/\x00x", "http://a.org/%00x"),
        # path set: " < > ^ ` { } encoded, ' | kept; special-query set: ' " < > encoded
        (
            "http://a.org/'\"<>|{}^`?'\"<>|{}^`",
            "http://a.org/'%22%3C%3E|%7B%7D%5E%60?%27%22%3C%3E|{}^`",
        ),
        # dot segments, also percent-encoded ones
        ("http://a.org/a/./b/../c", "http://a.org/a/c"),
        ("http://a.org/%2e%2E/x", "http://a.org/x"),
        ("http://a.org/a/%2e", "http://a.org/a/"),
        # empty userinfo is no userinfo
        ("http://@example.org/", "http://example.org/"),
        # a lone surrogate is U+FFFD, as in a USVString
        ("http://a.org/\ud800x", "http://a.org/%EF%BF%BDx"),
    ],
)
def test_normal_form(text: str, normal: str) -> None:
    assert normalize(text) == normal
    assert normalize(normal) == normal  # a normal form is a fixed point


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("../x.jpg", "http://a.org/x.jpg"),
        ("../../../x", "http://a.org/x"),
        ("%2e%2e/x", "http://a.org/x"),
        ("//cdn.a.org/y.png", "http://cdn.a.org/y.png"),
        ("\t//x.org", "http://x.org/"),
        ("?p=2", "http://a.org/dir/page.html?p=2"),
        ("#frag", "http://a.org/dir/page.html"),
        ("café.jpg", "http://a.org/dir/caf%C3%A9.jpg"),
        ("  /a ", "http://a.org/a"),
        # backslashes: images\photo.jpg is fetched as images/photo.jpg, /\host is a host
        ("images\\photo.jpg", "http://a.org/dir/images/photo.jpg"),
        ("/\\evil.org/x", "http://evil.org/x"),
        # http:x is relative to an http base, absolute under another scheme
        ("http:example.com", "http://a.org/dir/example.com"),
        ("https:example.com", "https://example.com/"),
        ("http://b.org", "http://b.org/"),
        ("a b.jpg?sig=%2F x", "http://a.org/dir/a%20b.jpg?sig=%2F%20x"),
    ],
)
def test_relative_urls_resolve_against_the_base(text: str, normal: str) -> None:
    assert normalize(text, BASE) == normal


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("ftp://example.org/a.jpg", "unsupported_scheme", "'ftp'"),
        ("file:///etc/passwd", "unsupported_scheme", "'file'"),
        ("javascript:alert(1)", "unsupported_scheme", "'javascript'"),
        ("mailto:a@b.org", "unsupported_scheme", "'mailto'"),
        ("data:image/png,abc", "unsupported_scheme", "'data'"),
        ("example.org/a.jpg", "invalid_url", "no scheme"),
        # "http:///a.jpg" (a test here before) is valid by the standard: http://a.jpg/
        ("http://", "invalid_url", "no host"),
        ("http:///", "invalid_url", "no host"),
        ("http://exa mple.org/", "invalid_url", "invalid host"),
        ("http://a<b.org/", "invalid_url", "invalid host"),
        ("http://%zz.org/", "invalid_url", "invalid host"),
        ("http://example.org:99999/", "invalid_url", "invalid port"),
        ("http://a.org:8x/", "invalid_url", "invalid port"),
        ("http://[::1/", "invalid_url", "IPv6"),
        ("http://[1::2::3]/", "invalid_url", "IPv6"),
        ("http://[g::1]/", "invalid_url", "IPv6"),
        ("http://[::1.2.3.]/", "invalid_url", "IPv6"),
        ("http://1.2.3.256/", "invalid_url", "invalid host"),
        ("http://0x100000000/", "invalid_url", "invalid host"),
        ("http://1.2.3.4.5/", "invalid_url", "invalid host"),  # ends in a number: IPv4 or nothing
        ("http://1.2.3.09/", "invalid_url", "invalid host"),  # 09 is no octal number
        ("http://foo.0x4/", "invalid_url", "invalid host"),
        ("http://user:pw@example.org/", "invalid_url", "credentials"),
        ("http://user@example.org/", "invalid_url", "credentials"),
        ("http://example.org/" + "a" * 9000, "invalid_url", "longer than"),
        # within the cap as given, over it once encoded
        ("http://a.org/" + "é" * (MAX_URL_LENGTH // 3), "invalid_url", "longer than"),
    ],
)
def test_bad_urls_get_precise_codes(text: str, code: str, says: str) -> None:
    with pytest.raises(InvalidURL) as info:
        parse_url(text)
    assert info.value.code == code
    assert says in str(info.value)


def test_bad_links_raise_with_their_class_against_a_base() -> None:
    for text, code in [
        ("mailto:a@b.org", "unsupported_scheme"),
        ("javascript:void(0)", "unsupported_scheme"),
        ("http://user:pw@a.org/", "invalid_url"),
        ("http://exa mple.org/", "invalid_url"),
        ("//[::1", "invalid_url"),
    ]:
        with pytest.raises(InvalidURL) as err:
            normalize(text, BASE)
        assert err.value.code == code, text


def test_parse_url_is_sent_as_given_and_keys_are_stable() -> None:
    url = parse_url("HTTP://Example.org:80/a b.jpg?s=%2F#x")
    assert str(url) == "http://example.org/a%20b.jpg?s=%2F"
    assert url.raw_query_string == "s=%2F"  # yarl was told not to re-encode
    assert url_key("http://a/1") != url_key("http://a/2")
    assert len(url_key("http://a/1")) == 32


def test_host_of_a_normal_form() -> None:
    assert host_of("http://[::1]:8080/x") == "::1"
    assert host_of("https://a.org/") == "a.org"
    assert host_of("http://127.0.0.1:9/") == "127.0.0.1"
    assert host_of(normalize("http://Bücher.de:81")) == "xn--bcher-kva.de"


# -- on the wire -----------------------------------------------------------------------------

# (as given in the list, the request target a browser sends)
WIRE = [
    ("/sig.jpg?X-Sig=ab%2Fcd%3D%3D&exp=1", "/sig.jpg?X-Sig=ab%2Fcd%3D%3D&exp=1"),
    ("/a%2Fb/c|d/[x]/%7e~/é/a b?q=%2F x+y&z='a'|{}^`é", None),
    ("/p?x=%zz&y=%", "/p?x=%zz&y=%"),
    ("/img\\photo.jpg", "/img/photo.jpg"),
    ("/q?a+b%2Bc", "/q?a+b%2Bc"),
    ("/%2e%2E/dots/./x/..%2f", "/dots/x/..%2f"),
]


def _recorder() -> tuple[web.Application, list[str]]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.raw_path)
        if request.path == "/go":
            # A redirect's Location is resolved as a browser resolves it.
            return web.Response(status=302, headers={"Location": "sub\\x y.jpg?s=%2F z"})
        return web.Response(body=b"data", content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app, seen


def test_the_bytes_sent_are_the_whatwg_href(tmp_path: Path) -> None:
    """What aiograb requests is, byte for byte, the href (minus the origin) — aiohttp
    and yarl do not re-encode it — and the manifest's rows are keyed by it."""
    app, seen = _recorder()

    async def main() -> None:
        async with serve_app(app) as origin:
            urls = [origin + given for given, _ in WIRE] + [origin + "/go"]
            policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=0))
            summary = await download_async(urls, tmp_path, policy=policy)
            assert summary.counts == {"ok": len(WIRE) + 1}
            expected = [
                want or normalize(origin + given).removeprefix(origin) for given, want in WIRE
            ]
            assert seen[: len(WIRE)] == expected
            assert seen[len(WIRE) :] == ["/go", "/sub/x%20y.jpg?s=%2F%20z"]
            assert expected[1] == (
                "/a%2Fb/c|d/[x]/%7e~/%C3%A9/a%20b?q=%2F%20x+y&z=%27a%27|{}^`%C3%A9"
            )
            finals = {r["url"]: r["final_url"] for r in manifest(tmp_path)}
            assert finals[origin + "/go"] == origin + "/sub/x%20y.jpg?s=%2F%20z"

    run(main())


def test_one_url_one_row_in_a_get_list(tmp_path: Path) -> None:
    """``http://H`` and ``http://H/`` (and other spellings of one URL) are one row."""
    app, seen = _recorder()

    async def main() -> None:
        async with serve_app(app) as origin:
            host = origin.removeprefix("http://")
            spellings = [origin, origin + "/", f"HTTP://{host}/#top", f"http:\\\\{host}\\"]
            policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=0))
            summary = await download_async(spellings, tmp_path, policy=policy)
            assert summary.counts == {"ok": 1}
            assert seen == ["/"]
            assert [r["url"] for r in manifest(tmp_path)] == [origin]

    run(main())
