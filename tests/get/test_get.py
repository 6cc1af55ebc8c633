"""The download engine end to end, against the real local server."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from aiograb import FakeClock, Limits, RequestPolicy, RetryPolicy, Summary, Timeouts, download_async
from aiograb._core.models import InputRow
from aiograb.testing import RunningServer, file_bytes, flaky_image_index, image_bytes
from tests.helpers import by_url, closed_port, manifest, run

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2))


def get(
    urls: list[str],
    out: Path,
    *,
    limits: Limits | None = None,
    policy: RequestPolicy = FAST,
    clock: FakeClock | None = None,
    retry_failed: bool = False,
) -> Summary:
    rows = [InputRow(line=i, url=u) for i, u in enumerate(urls, 1)]
    return run(
        download_async(
            rows,
            out,
            limits=limits or Limits(concurrency=16, per_host=0),
            policy=policy,
            clock=clock,
            retry_failed=retry_failed,
        )
    )


def test_happy_path_files_are_byte_identical(server: RunningServer, tmp_path: Path) -> None:
    exts = ["jpg", "png", "webp", "gif"]
    urls = [server.url(f"/img/{i}.{exts[i % 4]}") for i in range(40)]
    summary = get(urls, tmp_path)
    assert summary.counts == {"ok": 40}
    assert summary.exit_code == 0
    rows = by_url(tmp_path)
    for i, url in enumerate(urls):
        row = rows[url]
        expected = image_bytes(i, exts[i % 4])
        stored = tmp_path / row["path"]
        assert stored.read_bytes() == expected
        assert row["sha256"] == hashlib.sha256(expected).hexdigest()
        assert row["bytes"] == len(expected)
        assert row["status"] == 200
        assert row["content_type"] == f"image/{ {'jpg': 'jpeg'}.get(exts[i % 4], exts[i % 4]) }"
        assert stored.suffix == "." + exts[i % 4]
        assert row["path"].startswith(row["path"].split("/")[1][:2] + "/")
    # Nothing but the stored files, the manifest and the journal; no temporaries.
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert files - {r["path"] for r in rows.values()} <= {
        "manifest.jsonl",
        "aiograb-journal.sqlite",
        "aiograb-journal.sqlite-wal",
        "aiograb.lock",  # the run lock (kept: unlinking it would race a starting run)
        "aiograb-journal.sqlite-shm",
    }


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/status/404", "http_404"),
        ("/status/403", "http_403"),
        ("/status/500", "http_500"),
        ("/reset/1.jpg", "connection_reset"),
        ("/truncated/1.jpg", "truncated"),
        ("/redirect-loop/1", "redirect_loop"),
        ("/redirect/12/1.jpg", "too_many_redirects"),
        ("/redirect-to?url=file:///etc/passwd", "bad_redirect"),
        ("/html-as-jpeg/1.jpg", "not_image"),
        ("/html/1", "not_image"),
        ("/file/1.bin?bytes=5000", "not_image"),
        ("/huge/3.jpg?length=1", "too_large"),
        ("/huge/3.jpg?length=0", "too_large"),
    ],
)
def test_fault_routes_end_as_their_error_class(
    server: RunningServer, tmp_path: Path, path: str, code: str
) -> None:
    policy = RequestPolicy(
        retry=RetryPolicy(retries=0), max_bytes=1 << 20, timeouts=Timeouts(total=5)
    )
    url = server.url(path)
    summary = get([url], tmp_path, policy=policy)
    row = by_url(tmp_path)[url]
    assert (row["state"], row["error"]) == ("failed", code), row
    assert row["message"]
    assert row["path"] is None
    assert summary.exit_code == 1
    # A failed URL leaves no file and no temporary behind.
    assert not [p for p in tmp_path.rglob("*.part")]
    assert not [p for p in tmp_path.glob("??/*") if p.is_file()]


def test_stalled_body_times_out(server: RunningServer, tmp_path: Path) -> None:
    policy = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=0.5))
    url = server.url("/stall/1.jpg")
    get([url], tmp_path, policy=policy)
    assert by_url(tmp_path)[url]["error"] == "timeout"


def test_refused_connection_and_bad_urls(tmp_path: Path) -> None:
    refused = f"http://127.0.0.1:{closed_port()}/a.jpg"
    urls = [refused, "ftp://example.org/a.jpg", "javascript:alert(1)", "not a url", "http:///"]
    get(urls, tmp_path)
    rows = by_url(tmp_path)
    assert rows[refused]["error"] == "connect_refused"
    assert rows["ftp://example.org/a.jpg"]["error"] == "unsupported_scheme"
    assert rows["javascript:alert(1)"]["error"] == "unsupported_scheme"
    assert rows["not a url"]["error"] == "invalid_url"
    # "http:///x" is valid by the WHATWG URL Standard (http://x/); "http:///" has no host.
    assert rows["http:///"]["error"] == "invalid_url"
    assert [r["line"] for r in manifest(tmp_path)] == [1, 2, 3, 4, 5]


def test_redirect_chain_is_followed_and_final_url_recorded(
    server: RunningServer, tmp_path: Path
) -> None:
    url = server.url("/redirect/3/7.png")
    get([url], tmp_path)
    row = by_url(tmp_path)[url]
    assert row["state"] == "ok"
    assert row["final_url"] == server.url("/img/7.png")
    assert (tmp_path / row["path"]).read_bytes() == image_bytes(7, "png")


def test_retries_with_backoff_then_success(server: RunningServer, tmp_path: Path) -> None:
    key = uuid.uuid4().hex
    url = server.url(f"/flaky/{key}/2?status=503")
    clock = FakeClock()
    policy = RequestPolicy(retry=RetryPolicy(retries=3, backoff=10, max_backoff=60))
    summary = get([url], tmp_path, policy=policy, clock=clock)
    row = by_url(tmp_path)[url]
    assert (row["state"], row["attempts"]) == ("ok", 3)
    assert (tmp_path / row["path"]).read_bytes() == image_bytes(flaky_image_index(key), "png")
    assert summary.retries == 2
    backoffs = [s for s in clock.slept if s > 0]
    assert len(backoffs) == 2
    assert backoffs[0] <= 10
    assert backoffs[1] <= 20


def test_no_retry_for_404_and_retry_budget_for_500(server: RunningServer, tmp_path: Path) -> None:
    policy = RequestPolicy(retry=RetryPolicy(retries=2, backoff=0.01))
    a, b = server.url("/status/404"), server.url("/status/502")
    get([a, b], tmp_path, policy=policy, clock=FakeClock())
    rows = by_url(tmp_path)
    assert rows[a]["attempts"] == 1
    assert rows[b]["attempts"] == 3


@pytest.mark.parametrize("date", [0, 1])
def test_retry_after_pauses_the_host(server: RunningServer, tmp_path: Path, date: int) -> None:
    key = uuid.uuid4().hex
    url = server.url(f"/flaky/{key}/1?status=429&retry_after=120&date={date}")
    clock = FakeClock()
    policy = RequestPolicy(retry=RetryPolicy(retries=1, backoff=0.01))
    get([url], tmp_path, policy=policy, clock=clock)
    row = by_url(tmp_path)[url]
    assert (row["state"], row["attempts"]) == ("ok", 2)
    # The wait honoured Retry-After (an HTTP-date is rounded to whole seconds).
    assert max(clock.slept) >= 118


def test_retry_after_beyond_the_cap_fails_at_once(server: RunningServer, tmp_path: Path) -> None:
    url = server.url(f"/flaky/{uuid.uuid4().hex}/1?status=503&retry_after=3600")
    policy = RequestPolicy(retry=RetryPolicy(retries=3, max_retry_after=60))
    clock = FakeClock()
    get([url], tmp_path, policy=policy, clock=clock)
    row = by_url(tmp_path)[url]
    assert (row["error"], row["attempts"]) == ("http_503", 1)
    assert not [s for s in clock.slept if s >= 60]


def test_max_bytes_allows_bodies_under_the_limit(server: RunningServer, tmp_path: Path) -> None:
    small, big = server.url("/img/1.png"), server.url("/img/2.png?size=large")
    policy = RequestPolicy(retry=RetryPolicy(retries=0), max_bytes=200_000)
    get([small, big], tmp_path, policy=policy)
    rows = by_url(tmp_path)
    assert rows[small]["state"] == "ok"
    assert rows[big]["error"] == "too_large"


def test_accept_any_keeps_other_files(server: RunningServer, tmp_path: Path) -> None:
    url = server.url("/file/3.bin?bytes=5000")
    get([url], tmp_path, policy=RequestPolicy(accept="any", retry=RetryPolicy(retries=0)))
    row = by_url(tmp_path)[url]
    assert row["state"] == "ok"
    assert (tmp_path / row["path"]).read_bytes() == file_bytes(3, 5000)
    assert row["path"].endswith(".bin")


def test_accept_list_of_types(server: RunningServer, tmp_path: Path) -> None:
    png, jpg = server.url("/img/1.png"), server.url("/img/1.jpg")
    get([png, jpg], tmp_path, policy=RequestPolicy(accept="image/png"))
    rows = by_url(tmp_path)
    assert rows[png]["state"] == "ok"
    assert rows[jpg]["error"] == "unaccepted_type"


def test_duplicate_urls_are_fetched_once(server: RunningServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    url = server.url(f"/img/5.jpg?dup={tag}")
    get([url, url, url + "#fragment", url], tmp_path)
    assert len(manifest(tmp_path)) == 1
    hits = [r for r in server.requests if tag in r.path_qs]
    assert len(hits) == 1


def test_server_paths_never_escape_the_output_folder(server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    urls = [
        server.url("/disposition/1.jpg"),
        server.url("/img/1.jpg?name=../../../../etc/evil.jpg"),
        server.url("/redirect-to?url=/img/2.jpg%3Fx%3D..%252F..%252Fevil"),
    ]
    get(urls, out)
    rows = manifest(out)
    assert [r["state"] for r in rows] == ["ok", "ok", "ok"]
    for row in rows:
        resolved = (out / row["path"]).resolve()
        assert resolved.is_relative_to(out.resolve())
        assert ".." not in row["path"]
    outside = {p.name for p in tmp_path.rglob("*") if not p.is_relative_to(out)}
    assert outside == set()


def test_rerun_fetches_nothing_and_retry_failed_retries(
    server: RunningServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex
    good = [server.url(f"/img/{i}.png?run={tag}") for i in range(10)]
    flaky = server.url(f"/flaky/{tag}/1?status=500")
    urls = [*good, flaky]
    first = get(urls, tmp_path)
    assert first.counts == {"ok": 10, "failed": 1}
    seen = len([r for r in server.requests if tag in r.path_qs])

    second = get(urls, tmp_path)
    assert second.fetched == 0
    assert len([r for r in server.requests if tag in r.path_qs]) == seen
    assert second.exit_code == 1

    third = get(urls, tmp_path, retry_failed=True)
    assert third.fetched == 1
    assert third.counts == {"ok": 11}
    assert third.exit_code == 0
    row = by_url(tmp_path)[flaky]
    assert row["attempts"] == 2  # attempts add up across runs
    assert len(manifest(tmp_path)) == 11


def test_default_user_agent_and_custom_headers(server: RunningServer, tmp_path: Path) -> None:
    import json

    url = server.url("/headers")
    policy = RequestPolicy(accept="any", headers={"X-Token": "abc"})
    get([url], tmp_path, policy=policy)
    row = by_url(tmp_path)[url]
    sent = json.loads((tmp_path / row["path"]).read_bytes())
    assert sent["X-Token"] == "abc"
    assert sent["User-Agent"].startswith("aiograb/")


def test_extra_columns_reach_the_manifest(server: RunningServer, tmp_path: Path) -> None:
    rows = [InputRow(line=1, url=server.url("/img/1.png"), extra={"caption": "a cat"})]
    run(download_async(rows, tmp_path, policy=FAST))
    assert manifest(tmp_path)[0]["extra"] == {"caption": "a cat"}


def test_a_busy_host_does_not_hold_up_the_others(server: RunningServer, tmp_path: Path) -> None:
    """Rows for a host at its limit wait aside; workers serve other hosts meanwhile."""
    port = server.base_url.rsplit(":", 1)[1]
    slow = [server.url(f"/img/{i}.png?latency_ms=400") for i in range(5)]  # host 127.0.0.1
    fast = [f"http://localhost:{port}/img/{i}.jpg" for i in range(20)]  # another host name
    get(slow + fast, tmp_path, limits=Limits(concurrency=4, per_host=1))
    rows = by_url(tmp_path)
    assert all(r["state"] == "ok" for r in rows.values())
    fast_done = max(rows[u]["started"] + rows[u]["elapsed"] for u in fast)
    slow_last_start = max(rows[u]["started"] for u in slow)
    # Without parking, three of four workers would wait on the slow host's single slot
    # and the fast host's rows would only start once the slow ones were all under way.
    assert fast_done < slow_last_start


def test_large_bodies_spill_to_disk_and_arrive_whole(server: RunningServer, tmp_path: Path) -> None:
    """Bodies over the in-memory limit stream through a temporary file, then are renamed."""
    from aiograb._store.sinks import SPILL_BYTES

    large = server.url("/img/5.png?size=large")
    chunked = server.url("/huge/3.jpg?length=0")  # no Content-Length: read chunk by chunk
    # Drawn here first (the in-thread server shares the cache): drawing a large picture
    # takes seconds on a loaded machine, which would eat the run's 5 s timeout.
    expected = image_bytes(5, "png", size="large")
    summary = get([large, chunked], tmp_path)
    assert summary.counts == {"ok": 2}
    rows = by_url(tmp_path)
    body = (tmp_path / rows[large]["path"]).read_bytes()
    assert body == expected
    assert len(body) > SPILL_BYTES
    huge = tmp_path / rows[chunked]["path"]
    assert huge.stat().st_size == 3 * 1024 * 1024 == rows[chunked]["bytes"]
    assert hashlib.sha256(huge.read_bytes()).hexdigest() == rows[chunked]["sha256"]
    assert not list((tmp_path / ".aiograb-tmp").iterdir())
