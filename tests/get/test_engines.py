"""The blocking engines (sync, threads) share the async engine's rules, sinks and journal:
the same input gives the same files and the same error classes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aiograb import Limits, RequestPolicy, RetryPolicy, Timeouts
from aiograb._core.models import InputRow
from aiograb._get.blocking import run_get_blocking
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import by_url, closed_port, manifest

POLICY = RequestPolicy(
    retry=RetryPolicy(retries=1, backoff=0.01), max_bytes=1 << 20, timeouts=Timeouts(total=5)
)
FAULTS = {
    "/status/404": "http_404",
    "/status/500": "http_500",
    "/reset/1.jpg": "connection_reset",
    "/truncated/1.jpg": "truncated",
    "/redirect-loop/1": "redirect_loop",
    "/redirect/12/1.jpg": "too_many_redirects",
    "/redirect-to?url=file:///etc/passwd": "bad_redirect",
    "/html-as-jpeg/1.jpg": "not_image",
    "/huge/3.jpg?length=0": "too_large",
}


@pytest.mark.parametrize("engine", ["sync", "threads"])
def test_blocking_engines_match_the_async_engine(
    server: RunningServer, tmp_path: Path, engine: str
) -> None:
    exts = ["jpg", "png", "webp", "gif"]
    good = [server.url(f"/img/{i}.{exts[i % 4]}") for i in range(12)]
    faults = [server.url(path) for path in FAULTS]
    refused = f"http://127.0.0.1:{closed_port()}/x.jpg"
    urls = [*good, server.url("/redirect/2/3.png"), *faults, refused, "ftp://x/y"]
    rows = [InputRow(line=i, url=u) for i, u in enumerate(urls, 1)]
    summary = run_get_blocking(
        rows, tmp_path, engine=engine, limits=Limits(concurrency=4, per_host=2), policy=POLICY
    )
    got = by_url(tmp_path)
    assert len(got) == len(urls)
    for i, url in enumerate(good):
        assert (tmp_path / got[url]["path"]).read_bytes() == image_bytes(i, exts[i % 4])
    assert got[server.url("/redirect/2/3.png")]["final_url"] == server.url("/img/3.png")
    for path, code in FAULTS.items():
        assert got[server.url(path)]["error"] == code, path
    assert got[server.url("/status/500")]["attempts"] == 2
    assert got[refused]["error"] == "connect_refused"
    assert got["ftp://x/y"]["error"] == "unsupported_scheme"
    assert summary.ok == 13
    assert not list((tmp_path / ".aiograb-tmp").iterdir())


def test_threads_engine_uses_its_threads_and_stops_on_request(
    server: RunningServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/img/{i}.png?latency_ms=20") for i in range(400)]
    rows = (InputRow(line=i, url=u) for i, u in enumerate(urls, 1))
    stop = threading.Event()
    recorded = 0

    def on_outcome(row: object, outcome: object) -> None:
        nonlocal recorded
        recorded += 1
        if recorded == 50:
            stop.set()

    summary = run_get_blocking(
        rows, tmp_path, engine="threads", limits=Limits(concurrency=8, per_host=0),
        stop=stop, on_outcome=on_outcome,
    )  # fmt: skip
    assert summary.interrupted
    assert summary.exit_code == 130
    assert summary.peak_threads >= 8
    assert 50 <= summary.ok < 400
    states = [r["state"] for r in manifest(tmp_path)]
    assert states.count("ok") == summary.ok
    assert set(states) == {"ok", "pending"}
