"""robots.txt group selection per RFC 9309 (section 2.2.1), before protego matches paths."""

from __future__ import annotations

import pytest

from aiograb._crawl.robots import group_for


@pytest.mark.parametrize(
    ("body", "rules"),
    [
        # a UTF-8 BOM does not hide the first group
        ("\ufeffUser-agent: aiograb\nDisallow: /a\n", ["disallow: /a"]),
        # the product token, case-insensitively, with a version after it
        ("User-agent: AIOGRAB/2.0\nDisallow: /a\n", ["disallow: /a"]),
        # a group named by a prefix or a word of our User-Agent header is not ours
        ("User-agent: ai\nDisallow: /\nUser-agent: image\nDisallow: /\n", []),
        ("User-agent: aiograbber\nDisallow: /\nUser-agent: *\nDisallow: /s\n", ["disallow: /s"]),
        # no group of ours: the * group; ours: only ours
        ("User-agent: *\nDisallow: /s\nUser-agent: aiograb\nAllow: /\n", ["allow: /"]),
        # every group of ours is merged, in order
        (
            "User-agent: aiograb\nDisallow: /a\n\nUser-agent: x\nDisallow: /x\n\n"
            "User-agent: aiograb\nDisallow: /b\n",
            ["disallow: /a", "disallow: /b"],
        ),
        # an unknown line (or a Sitemap) between User-agent lines does not end the group
        (
            "User-agent: aiograb\nFoo: 1\nSitemap: /s.xml\nUser-agent: x\nDisallow: /x\n",
            ["disallow: /x"],
        ),
        # rules before any User-agent line belong to no group
        ("Disallow: /\nUser-agent: *\nAllow: /\n", ["allow: /"]),
        # comments, blank lines, the colon-less form, crawl-delay
        (
            "# hi\n\nuser-agent aiograb # us\ndisallow /p # no\nCrawl-delay: 2\n",
            [
                "disallow: /p",
                "crawl-delay: 2",
            ],
        ),
    ],
)
def test_the_group_for_our_product_token(body: str, rules: list[str]) -> None:
    group, _sitemaps = group_for(body, "aiograb")
    assert group.splitlines() == ["User-agent: *", *rules]


def test_sitemaps_are_collected_from_anywhere() -> None:
    body = "Sitemap: https://a.org/1.xml\nUser-agent: x\nSitemap https://a.org/2.xml\n"
    assert group_for(body, "aiograb")[1] == ["https://a.org/1.xml", "https://a.org/2.xml"]
