"""The normal form's fast path (``_core/urls.py``): a URL already written as the parser
would write it is returned as given, without asking ada. The claim is checked against
ada itself, on URLs built from the pieces that break it (case, default and zero-led
ports, numbers that are IPv4 to the standard, punycode, dot segments, characters an
encode set names)."""

from __future__ import annotations

import pytest
from ada_url import normalize_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from aiograb._core.errors import InvalidURL
from aiograb._core.urls import _normal, normalize, parse_url, url_of

NORMAL = [
    "http://127.0.0.1:40123/call?key=123456&ns=aiograb-hedged",
    "https://images.example.org/a/b/c/photo-123.jpg",
    "http://www.a.org/",
    "https://a.org/x%20y/%7e?q=a%20b&r=%27",
    "http://a-b.c0.org:8080/.a/b./...?",
    "http://255.255.255.255:65535/x'y",
]

NOT_NORMAL = [
    "HTTP://a.org/",  # scheme case
    "http://A.org/",  # host case
    "http://a.org",  # empty path
    "http://a.org:80/",  # the default port
    "https://a.org:443/",
    "http://a.org:080/",  # a zero-led port
    "http://a.org:65536/",  # no such port
    "http://a.org/a/./b",  # dot segments
    "http://a.org/a/../b",
    "http://a.org/a/..",
    "http://a.org/%2e/",
    "http://a.1/",  # a host ending in a number is IPv4
    "http://1.2/",
    "http://0x7f.0.0.1/",
    "http://010.0.0.1/",
    "http://xn--nxasmq6b.com/",  # punycode
    "http://a.org/x y",  # encode sets
    "http://a.org/x?y='",
    'http://a.org/x"y',
    "http://a.org/x#top",  # a fragment
    "http://a.org\\x",  # a backslash
    "http://u@a.org/",  # credentials
    "http://[::1]/",  # IPv6 (ada writes it)
    "http://a.org/é",
    "ftp://a.org/",
]


@pytest.mark.parametrize("url", NORMAL)
def test_urls_in_normal_form_take_the_fast_path(url: str) -> None:
    assert _normal(url) is not None
    assert normalize(url) == url == normalize_url(url)
    assert normalize(url, base="http://other.org/dir/page.html") == url  # absolute
    _same_url(url)


def _same_url(url: str) -> None:
    """``parse_url`` of a URL on the fast path: built from its parts, the same URL as
    yarl's from the string, and written back byte for byte (it is the request target)."""
    parsed, split = parse_url(url), URL(url, encoded=True)
    assert str(parsed) == str(split) == str(url_of(url))
    if not url.endswith("?"):  # yarl drops an empty query's "?", from a string as well
        assert str(parsed) == url
    assert parsed == split == url_of(url)
    assert (parsed.scheme, parsed.host, parsed.port, parsed.raw_path_qs) == (
        split.scheme,
        split.host,
        split.port,
        split.raw_path_qs,
    )


@pytest.mark.parametrize("url", NOT_NORMAL)
def test_anything_else_goes_to_ada(url: str) -> None:
    assert _normal(url) is None


@pytest.mark.parametrize("href", ["http://[::1]:8080/x", "http://-a.org/x", "http://a.1/%2e"])
def test_a_journal_key_off_the_fast_path_is_split_by_yarl(href: str) -> None:
    assert _normal(href) is None
    assert url_of(href) == URL(href, encoded=True)


def _mostly(plain: str, breakers: list[str], size: int, least: int = 0) -> st.SearchStrategy[str]:
    """Strings mostly of ``plain`` characters, now and then one of ``breakers``."""
    choices = list(plain) * 20 + breakers
    return st.lists(st.sampled_from(choices), min_size=least, max_size=size).map("".join)


_octet = st.sampled_from(["0", "1", "9", "10", "99", "127", "199", "255", "256", "300"]) | (
    st.sampled_from(["00", "010", "0x7f", "0X1", ""])
)
_ipv4 = st.lists(_octet, min_size=4, max_size=4).map(".".join) | st.lists(
    _octet, min_size=1, max_size=5
).map(".".join)
_label = _mostly("abcxyz019-", ["xn--", "A", "_", "é", "%41", ""], 8, least=1)
_domain = st.lists(_label, min_size=1, max_size=4).map(".".join)
_port = (
    st.none()
    | st.sampled_from(["8080", "1", "65535"])
    | (_mostly("0123456789", ["80", "443", "65536", "0"], 3))
)
_segment = _mostly(
    "az09._~-!$&'()*+,;=:@",
    [".", "..", "%2e", "%2E", "%41", "%zz", "%7e", " ", '"', "<", "`", "{", "é", "\\", "?"],
    6,
)
_query = _mostly("az09._~-!$&()*+,;=:@/?", ["%41", "%2e", "%", " ", '"', "#x", "é", "'"], 6)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"] * 4 + ["HTTP", "Https", "ftp"]))
    host = draw(_domain | _ipv4)
    port = draw(_port)
    segments = draw(st.lists(_segment, max_size=4) if draw(st.booleans()) else st.just([""]))
    query = draw(st.none() | _query)
    url = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    url += "".join(f"/{segment}" for segment in segments)
    return url + (f"?{query}" if query is not None else "")


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_urls())
def test_a_url_on_the_fast_path_is_what_ada_writes(url: str) -> None:
    if _normal(url) is not None:
        assert normalize_url(url) == url
        _same_url(url)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_urls())
def test_a_journal_key_is_split_as_yarl_splits_it(url: str) -> None:
    """``url_of`` splits a key by hand: for every normal form there is (the fast path's
    and ada's: punycode, IPv6, %2e, odd ports), the URL yarl makes of the string."""
    try:
        href = normalize(url)
    except InvalidURL:
        return
    mine, yarls = url_of(href), URL(href, encoded=True)
    assert mine == yarls
    assert str(mine) == str(yarls)
    fields = ("scheme", "raw_host", "port", "raw_path", "raw_query_string", "raw_path_qs")
    assert [getattr(mine, f) for f in fields] == [getattr(yarls, f) for f in fields]


@pytest.mark.parametrize(
    "href",
    [
        "http://[::1]:8080/x?y",
        "http://[2001:db8::1]/",
        "http://a.org:0/",
        "http://xn--bcher-kva.example/b%C3%BCcher",
        "http://a.org./x",
        "http://a.org/%2fx%2F",
        "https://a.org/x?",
        "https://a.org/x??a=b?c",
        "http://127.0.0.1:65535/a:b@c",
    ],
)
def test_keys_yarl_reads_its_own_way_are_split_as_yarl_splits_them(href: str) -> None:
    assert normalize(href) == href  # each one a journal key
    mine, yarls = url_of(href), URL(href, encoded=True)
    assert (mine, str(mine), mine.port, mine.raw_host) == (
        yarls,
        str(yarls),
        yarls.port,
        yarls.raw_host,
    )
