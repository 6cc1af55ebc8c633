"""aiograb.testing.MockTransport through the public API: download() and open_client()."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import aiograb
from aiograb import ConnectError, Limits, RequestPolicy, RetryPolicy
from aiograb.testing import MockRequest, MockResponse, MockTransport, image_bytes
from tests.helpers import by_url, run

PNG = image_bytes(1, "png")
BASE = "https://img.example.org"


class Site:
    """The function the transport answers from; it counts what it was asked."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.requests: list[MockRequest] = []

    def __call__(self, request: MockRequest) -> MockResponse:
        self.requests.append(request)
        path = request.url.removeprefix(BASE)
        self.calls[path] += 1
        if path == "/flaky.png" and self.calls[path] <= 2:
            return MockResponse(503, {"Retry-After": "0"})
        if path == "/moved.png":
            return MockResponse(302, {"Location": "/target.png"})
        if path == "/page.png":
            return MockResponse(200, {"Content-Type": "text/html"}, b"<!doctype html><p>no</p>")
        if path == "/big.png":  # streamed: no Content-Length, caught while reading
            return MockResponse(200, [("content-type", "image/png")], [PNG] * 8)
        if path == "/down.png":
            raise ConnectError("connection refused", code="connect_refused")
        return MockResponse(200, {"Content-Type": "image/png"}, PNG)


POLICY = RequestPolicy(retry=RetryPolicy(retries=3, backoff=0), max_bytes=4 * len(PNG))


def test_download_with_a_mock_transport(tmp_path: Path) -> None:
    site = Site()
    names = ["ok", "flaky", "moved", "page", "big", "down"]
    urls = [f"{BASE}/{name}.png" for name in names]
    summary = aiograb.download(
        urls, tmp_path, limits=Limits(concurrency=4), policy=POLICY, transport=MockTransport(site)
    )
    rows = by_url(tmp_path)
    assert {u: rows[u]["error"] for u in urls} == {
        urls[0]: None,
        urls[1]: None,
        urls[2]: None,
        urls[3]: "not_image",
        urls[4]: "too_large",
        urls[5]: "connect_refused",
    }
    assert summary.counts["ok"] == 3
    # 503 twice, then the image: three attempts, and the body is the image.
    assert site.calls["/flaky.png"] == 3
    assert rows[urls[1]]["attempts"] == 3
    assert (tmp_path / rows[urls[1]]["path"]).read_bytes() == PNG
    # The redirect was followed by aiograb, not by the transport.
    assert site.calls["/target.png"] == 1
    assert rows[urls[2]]["final_url"] == f"{BASE}/target.png"
    assert (tmp_path / rows[urls[2]]["path"]).read_bytes() == PNG
    assert "max_bytes" in rows[urls[4]]["message"]
    assert not any(p.name.startswith("big") for p in tmp_path.iterdir())
    # The requests as aiograb sends them: our User-Agent, case-insensitive headers.
    assert all(r.headers["user-agent"].startswith("aiograb/") for r in site.requests)


def test_open_client_with_a_mock_transport() -> None:
    seen: list[MockRequest] = []

    async def answer(request: MockRequest) -> MockResponse:  # an async handler works too
        seen.append(request)
        return MockResponse(201, {"content-type": "application/json"}, b'{"ok": true}')

    async def main() -> aiograb.Response:
        async with aiograb.open_client(transport=MockTransport(answer)) as client:
            return await client.fetch(aiograb.Request(f"{BASE}/api", method="POST", json={"id": 7}))

    response = run(main())
    assert [(r.method, r.body) for r in seen] == [("POST", b'{"id": 7}')]
    assert seen[0].headers["content-type"] == "application/json"
    assert response.status == 201
    assert response.json() == {"ok": True}
    assert response.headers["Content-Type"] == "application/json"  # any case finds it


def test_a_transport_that_raises_a_foreign_error_surfaces_as_that_error(tmp_path: Path) -> None:
    """A bug in a user's transport is not a per-URL failure: it leaves download() as
    itself (never an ExceptionGroup), and the journal and manifest are still written."""

    def broken(request: MockRequest) -> MockResponse:
        raise RuntimeError(f"handler bug at {request.url}")

    urls = [f"{BASE}/{i}.png" for i in range(3)]
    with pytest.raises(RuntimeError, match="handler bug"):
        aiograb.download(urls, tmp_path, policy=POLICY, transport=MockTransport(broken))
    assert {row["state"] for row in by_url(tmp_path).values()} == {"pending"}
