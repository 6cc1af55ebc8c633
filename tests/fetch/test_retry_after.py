"""Retry-After: honoured up to max_retry_after, for the URL and for its host; beyond it,
the URL fails at once and the host's other URLs go on."""

from __future__ import annotations

import uuid
from pathlib import Path

from aiograb import FakeClock, Limits, RequestPolicy, RetryPolicy, download_async
from aiograb.testing import RunningServer
from tests.helpers import by_url, run

LIMITS = Limits(concurrency=1, per_host=1)  # one after the other, on one host


def _get(urls: list[str], out: Path, policy: RequestPolicy, clock: FakeClock) -> None:
    run(download_async(urls, out, limits=LIMITS, policy=policy, clock=clock))


def test_retry_after_beyond_the_cap_does_not_pause_the_host(
    server: RunningServer, tmp_path: Path
) -> None:
    blocked = server.url(f"/flaky/{uuid.uuid4().hex}/5?status=503&retry_after=100000")
    others = [server.url(f"/img/{i}.png") for i in range(3)]
    policy = RequestPolicy(retry=RetryPolicy(retries=3, backoff=0, max_retry_after=60))
    clock = FakeClock()
    _get([blocked, *others], tmp_path, policy, clock)
    rows = by_url(tmp_path)
    assert (rows[blocked]["error"], rows[blocked]["attempts"]) == ("http_503", 1)
    assert "max_retry_after=60" in rows[blocked]["message"]
    assert all(rows[u]["state"] == "ok" for u in others)
    # Nothing waited: neither the URL (it failed at once) nor the host's other URLs.
    assert sum(clock.slept) < 1, clock.slept


def test_retry_after_within_the_cap_pauses_the_host(server: RunningServer, tmp_path: Path) -> None:
    paused = server.url(f"/flaky/{uuid.uuid4().hex}/5?status=503&retry_after=40")
    other = server.url("/img/7.png")
    policy = RequestPolicy(retry=RetryPolicy(retries=0, max_retry_after=60))
    clock = FakeClock()
    start = clock.now()
    _get([paused, other], tmp_path, policy, clock)
    rows = by_url(tmp_path)
    assert (rows[paused]["error"], rows[paused]["attempts"]) == ("http_503", 1)
    assert rows[other]["state"] == "ok"
    # The other URL of that host waited out the 40 s the host asked for.
    assert clock.now() - start >= 40
    assert max(clock.slept) <= 40
