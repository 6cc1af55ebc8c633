"""X-Robots-Tag: a real server sends the header's variants; forbidden bodies are not kept."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

import aiograb
from aiograb import CrawlOptions, Limits, RequestPolicy, RetryPolicy, UsageError
from aiograb._fetch.robots_tag import forbidding_directive
from aiograb.testing import image_bytes
from tests.helpers import aiograb_cli, by_url, run, serve_app

PNG = image_bytes(3, "png")
DEFAULT = RequestPolicy().disallowed_header_directives

# variant -> (the X-Robots-Tag lines it sends, blocked for the token "aiograb"?)
VARIANTS: dict[str, tuple[list[str], bool]] = {
    "none": ([], False),
    "noai": (["noai"], True),
    "mixed-case": (["NoImageAI"], True),
    "among-others": (["nofollow, noarchive, noindex"], True),
    "harmless": (["nofollow, noarchive"], False),
    "other-bot": (["otherbot: noai"], False),
    "us": (["aiograb: noai"], True),
    "us-upper": (["AIOGRAB: noimageindex"], True),
    "two-lines": (["otherbot: noai", "aiograb: noindex"], True),
    "two-lines-other": (["otherbot: noai", "googlebot: noindex"], False),
    "joined": (["googlebot: nofollow, aiograb: noai"], True),
    "joined-other": (["aiograb: nofollow, otherbot: noai"], False),
    "unavailable-after": (["unavailable_after: Friday, 25-Jun-2010 15:00:00 PST"], False),
    "mybot": (["mybot: noai"], False),
}


def _app() -> web.Application:
    async def image(request: web.Request) -> web.Response:
        resp = web.Response(body=PNG, content_type="image/png")
        for line in VARIANTS[request.match_info["variant"]][0]:
            resp.headers.add("X-Robots-Tag", line)
        return resp

    async def page(request: web.Request) -> web.Response:
        imgs = "".join(f'<img src="/img/{v}.png">' for v in ("none", "noai", "other-bot", "us"))
        # The page itself says noindex: that stops nothing, the crawler keeps reading it.
        return web.Response(
            text=f"<html><body>{imgs}</body></html>",
            content_type="text/html",
            headers={"X-Robots-Tag": "noindex"},
        )

    app = web.Application()
    app.router.add_get("/img/{variant}.png", image)
    app.router.add_get("/", page)
    return app


def _download(tmp_path: Path, policy: RequestPolicy) -> tuple[dict[str, str], str]:
    async def main() -> tuple[dict[str, str], str]:
        async with serve_app(_app()) as base:
            urls = {v: f"{base}/img/{v}.png" for v in VARIANTS}
            await aiograb.download_async(
                urls.values(), tmp_path, policy=policy, limits=Limits(concurrency=4)
            )
            return urls, base

    return run(main())


def _stored(tmp_path: Path) -> list[str]:
    return [name for _, _, names in os.walk(tmp_path) for name in names if name.endswith(".png")]


def test_default_directives_for_all_agents_and_for_our_token(tmp_path: Path) -> None:
    urls, _ = _download(tmp_path, RequestPolicy(retry=RetryPolicy(retries=0)))
    rows = by_url(tmp_path)
    got = {v: rows[urls[v]]["error"] for v in VARIANTS}
    assert got == {v: "x_robots_tag" if blocked else None for v, (_, blocked) in VARIANTS.items()}
    assert "noai" in rows[urls["noai"]]["message"]
    assert rows[urls["noai"]]["path"] is None
    assert len(_stored(tmp_path)) == sum(not blocked for _, blocked in VARIANTS.values())


def test_our_own_token_and_directives(tmp_path: Path) -> None:
    policy = RequestPolicy(
        retry=RetryPolicy(retries=0),
        user_agent_token="mybot",
        disallowed_header_directives=("noai",),
    )
    urls, _ = _download(tmp_path, policy)
    blocked = {v for v in VARIANTS if by_url(tmp_path)[urls[v]]["error"] == "x_robots_tag"}
    # "aiograb: noai" is now about another bot; noindex is no longer ours to honour.
    assert blocked == {"noai", "mybot"}


def test_empty_disables(tmp_path: Path) -> None:
    _download(tmp_path, RequestPolicy(disallowed_header_directives=()))
    assert all(row["error"] is None for row in by_url(tmp_path).values())
    assert len(_stored(tmp_path)) == len(VARIANTS)


def test_crawled_images_are_checked_pages_are_not(tmp_path: Path) -> None:
    async def main() -> str:
        async with serve_app(_app()) as base:
            await aiograb.crawl_async(
                base + "/",
                tmp_path,
                options=CrawlOptions(max_depth=1),
                policy=RequestPolicy(retry=RetryPolicy(retries=0)),
            )
            return base

    base = run(main())
    rows = by_url(tmp_path)
    assert rows[base + "/"]["error"] is None  # the noindex page was read
    assert rows[f"{base}/img/none.png"]["error"] is None
    assert rows[f"{base}/img/other-bot.png"]["error"] is None
    assert rows[f"{base}/img/noai.png"]["error"] == "x_robots_tag"
    assert rows[f"{base}/img/us.png"]["error"] == "x_robots_tag"


@pytest.mark.parametrize("engine", ["async", "threads"])
def test_cli_flags_on_both_engines(tmp_path: Path, engine: str) -> None:
    async def main() -> list[tuple[int, str]]:
        async with serve_app(_app()) as base:
            listing = tmp_path / "urls.txt"
            listing.write_text(f"{base}/img/us.png\n{base}/img/mybot.png\n{base}/img/none.png\n")
            results: list[tuple[int, str]] = []
            for extra in (
                [],
                ["--user-agent-token", "mybot"],
                ["--disallowed-header-directives", ""],
            ):
                out = tmp_path / f"out{len(results)}"
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "aiograb", "get", str(listing), "-o", str(out),
                    "--engine", engine, "--quiet", *extra,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                await asyncio.wait_for(proc.communicate(), 60)
                assert proc.returncode is not None
                rows = by_url(out)
                blocked = sorted(u.rsplit("/", 1)[1] for u, r in rows.items() if r["error"])
                results.append((proc.returncode, ",".join(blocked)))
            return results

    assert run(main()) == [(1, "us.png"), (1, "mybot.png"), (0, "")]


def test_bad_token_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="user_agent_token"):
        RequestPolicy(user_agent_token="my bot/1.0")
    result = aiograb_cli("get", tmp_path / "none.txt", "-o", tmp_path, "--user-agent-token", "a b")
    assert result.returncode == 2
    assert "--user-agent-token must be" in result.stderr


@pytest.mark.parametrize(
    ("lines", "token", "expected"),
    [
        ([], "aiograb", None),
        (["noai"], "aiograb", "noai"),
        (["  NOINDEX , nofollow"], "aiograb", "noindex"),
        (["otherbot: noai"], "aiograb", None),
        (["aiograb: noai"], "AIOGRAB", "noai"),
        (["googlebot: nofollow, aiograb: noimageai"], "aiograb", "noimageai"),
        (["aiograb: nofollow, otherbot: noai"], "aiograb", None),
        (["max-snippet: 0, noai"], "aiograb", "noai"),  # a valued directive is not a bot
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], "aiograb", None),
        (["otherbot: noai", "noindex"], "aiograb", "noindex"),  # a new line, a new scope
    ],
)
def test_forbidding_directive(lines: list[str], token: str, expected: str | None) -> None:
    assert forbidding_directive(lines, token, DEFAULT) == expected


def test_policy_normalises_directives() -> None:
    policy = RequestPolicy(disallowed_header_directives=("NoAI", " noindex ", ""))
    assert policy.disallowed_header_directives == ("noai", "noindex")
    text: object = "noai,noimageai"
    assert RequestPolicy(disallowed_header_directives=text).disallowed_header_directives == (  # type: ignore[arg-type]
        "noai",
        "noimageai",
    )
