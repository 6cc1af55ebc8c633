"""``aiograb crawl`` end to end against the generated site of the local test server."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiograb import (
    CrawlOptions,
    CrawlSummary,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
    crawl_async,
)
from aiograb._crawl.frontier import data_key
from aiograb.testing import (
    DATA_URI_GIF,
    RecordedRequest,
    RunningServer,
    serve_in_thread,
    site_image_urls,
    site_page_urls,
)
from tests.helpers import manifest, run

PAGES = 300
FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2))


@pytest.fixture(scope="module")
def site() -> Iterator[RunningServer]:
    with serve_in_thread() as server:
        yield server


@dataclass
class Crawled:
    out: Path
    result: CrawlSummary
    rows: list[dict[str, Any]]
    requests: list[RecordedRequest]

    def images(self, state: str = "ok") -> set[str]:
        return {
            r["url"]
            for r in self.rows
            if r.get("kind") == "image" and r["state"] == state and r["url"].startswith("http")
        }

    def pages(self, state: str = "ok") -> set[str]:
        return {r["url"] for r in self.rows if r.get("kind") == "page" and r["state"] == state}

    def classes(self) -> Counter[tuple[str, str, str | None]]:
        return Counter((r.get("kind", "file"), r["state"], r["error"]) for r in self.rows)

    def paths(self) -> list[str]:
        return [r.path_qs for r in self.requests]


def graph(out: Path) -> list[dict[str, Any]]:
    with (out / "pages.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def crawl(
    server: RunningServer,
    out: Path,
    options: CrawlOptions | None = None,
    seeds: list[str] | None = None,
    **kwargs: Any,
) -> Crawled:
    server.clear_requests()
    result = run(
        crawl_async(
            seeds or [server.url("/site/p/0.html")],
            out,
            options=options or CrawlOptions(),
            limits=Limits(concurrency=32, per_host=0),
            policy=FAST,
            **kwargs,
        )
    )
    return Crawled(out, result, manifest(out), server.requests)


@pytest.fixture(scope="module")
def full(site: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Crawled:
    out = tmp_path_factory.mktemp("full")
    return crawl(site, out, CrawlOptions(css=True, data_uris=True))


def test_saved_images_are_exactly_the_images_the_site_shows(
    full: Crawled, site: RunningServer
) -> None:
    expected = site_image_urls(site.base_url, PAGES, css=True)
    assert full.images() == expected
    assert {p for p in full.pages() if "/site/p/" in p} == site_page_urls(site.base_url, PAGES)
    # Each saved file is the image the server sent.
    for row in full.rows:
        if row.get("kind") == "image" and row["state"] == "ok":
            body = (full.out / row["path"]).read_bytes()
            assert hashlib.sha256(body).hexdigest() == row["sha256"]
            assert row["bytes"] == len(body)


def test_data_uri_images_are_decoded_and_saved_once(full: Crawled) -> None:
    rows = [r for r in full.rows if r["url"].startswith("data:")]
    assert len(rows) == 1
    (row,) = rows
    assert row["state"] == "ok"
    assert row["content_type"] == "image/gif"
    gif = base64.b64decode(DATA_URI_GIF.split(",", 1)[1])
    assert (full.out / row["path"]).read_bytes() == gif
    key = data_key(DATA_URI_GIF)
    assert sum(1 for p in graph(full.out) for i in p["images"] if i["url"] == key) == PAGES // 12


def test_every_image_row_records_its_page_and_alt_text(full: Crawled, site: RunningServer) -> None:
    rows = {r["url"]: r for r in full.rows}
    page0 = site.url("/site/p/0.html")
    cafe = rows[site.url("/site/img/9-caf%C3%A9.jpg")]
    assert cafe["extra"] == {"page": site.url("/site/p/9.html"), "alt": "Café crème 9"}
    photo = rows[site.url("/site/img/10-%E5%86%99%E7%9C%9F.jpg")]
    assert photo["extra"]["alt"] == "写真 10"
    assert rows[site.url("/site/img/0-a.jpg")]["extra"] == {"page": page0, "alt": "Photo 0"}
    by_id = {i: r for i, r in enumerate(full.rows)}
    assert by_id  # found_on holds the id of the page row
    for r in full.rows:
        if r.get("kind") == "image" and r["url"].startswith("http"):
            assert r["found_on"] is not None
            assert r["extra"]["page"].startswith(site.base_url)


def test_every_page_is_fetched_once_and_forbidden_paths_never(full: Crawled) -> None:
    paths = full.paths()
    pages = Counter(p for p in paths if p.startswith("/site/p/"))
    assert len(pages) == PAGES
    assert set(pages.values()) == {1}
    images = Counter(p for p in paths if p.startswith("/site/img/"))
    assert set(images.values()) == {1}
    assert paths.count("/robots.txt") == 1
    for forbidden in (
        "/site/private/",
        "/site/img/secret-",
        "/site/nofollow/",
        "/site/img/private",
    ):
        assert not [p for p in paths if p.startswith(forbidden)], forbidden


def test_traps_and_bad_links_end_as_rows_with_their_class(full: Crawled) -> None:
    classes = {(kind, state, error) for kind, state, error in full.classes()}
    for expected in [
        ("page", "skipped", "robots_disallowed"),
        ("image", "skipped", "robots_disallowed"),
        ("page", "skipped", "nofollow"),
        ("page", "skipped", "out_of_scope"),  # localhost, [::1], 169.254.169.254
        ("page", "skipped", "depth_limit"),  # the calendar and session traps
        ("page", "skipped", "url_too_long"),
        ("page", "skipped", "unsupported_scheme"),  # mailto:, ftp:, javascript:
        ("page", "skipped", "invalid_url"),
        ("page", "skipped", "not_html"),  # a PDF, checked by Content-Type
        ("page", "failed", "too_large"),  # 11 MiB > --max-page-bytes 10M
        ("page", "failed", "redirect_loop"),
        ("image", "failed", "http_404"),
        ("image", "failed", "blocked_address"),  # an <img> on the metadata address
    ]:
        assert expected in classes
    huge = next(r for r in full.rows if r["url"].endswith("/site/huge.html"))
    assert huge["message"] == "page larger than max_page_bytes 10485760"
    paths = full.paths()
    assert sum(p.startswith("/site/cal/") for p in paths) <= 2 * 10
    assert sum(p.startswith("/site/session") for p in paths) <= 10
    assert max(len(p) for p in paths) <= 2048


def test_graph_export(full: Crawled, site: RunningServer) -> None:
    pages = {p["url"]: p for p in graph(full.out)}
    page1 = pages[site.url("/site/p/1.html")]
    assert page1["state"] == "ok"
    assert page1["depth"] == 1
    assert site.url("/site/p/3.html") in page1["links"]
    assert site.url("/site/p/0.html") in page1["links"]  # up
    # itself: plainly, with a fragment, and as "#top"
    assert page1["links"].count(site.url("/site/p/1.html")) == 3
    assert {"url": site.url("/site/img/shared-logo.png"), "alt": "Logo"} in page1["images"]
    page11 = pages[site.url("/site/p/11.html")]
    assert page11["stylesheets"] == [site.url("/site/css/11.css")]
    assert pages[site.url("/site/doc.pdf")]["state"] == "skipped"


def test_summary_counts_by_kind(full: Crawled) -> None:
    kinds = full.result.kinds
    assert kinds["page"]["ok"] == len(full.pages())
    assert kinds["image"]["ok"] == len(full.images()) + 1  # and the data: URI
    assert kinds["css"] == {"ok": PAGES // 12}
    assert full.result.robots == "obeyed"
    # Ours, and the metadata address's (refused before connecting, like its image).
    assert full.result.robots_fetched == 2
    assert full.result.exit_code == 1  # some URLs failed (404, too large, loop, blocked)


def test_depth_limit(site: RunningServer, tmp_path: Path) -> None:
    done = crawl(site, tmp_path, CrawlOptions(max_depth=2))
    assert done.pages() >= site_page_urls(site.base_url, PAGES, max_depth=2)
    tree = {p for p in done.pages() if "/site/p/" in p}
    assert tree == site_page_urls(site.base_url, PAGES, max_depth=2)
    assert done.images() == site_image_urls(site.base_url, PAGES, max_depth=2)


def test_all_sizes_and_sitemaps(site: RunningServer, tmp_path: Path) -> None:
    done = crawl(site, tmp_path, CrawlOptions(all_sizes=True, sitemaps=True))
    expected = site_image_urls(site.base_url, PAGES, all_sizes=True, sitemaps=True)
    assert done.images() == expected
    orphans = {p for p in done.pages() if "/orphan/" in p}
    assert orphans == site_page_urls(site.base_url, 0, sitemaps=True)
    assert done.result.kinds["sitemap"] == {"ok": 2}


def test_pages_only_writes_the_graph_and_no_image(site: RunningServer, tmp_path: Path) -> None:
    done = crawl(site, tmp_path, CrawlOptions(max_depth=3, pages_only=True, graph_format="csv"))
    assert "image" not in done.result.kinds
    assert not [p for p in done.paths() if "/img/" in p]
    assert not (tmp_path / "pages.jsonl").exists()
    lines = (tmp_path / "graph.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "page,target,kind,alt"
    page0 = site.url("/site/p/0.html")
    assert f"{page0},{site.url('/site/img/0-a.jpg')},image,Photo 0" in lines
    assert f"{page0},{site.url('/site/p/1.html')},page," in lines


def admitted(done: Crawled) -> int:
    """Page rows the caps let in: fetched, whatever came of them."""
    return sum(
        1
        for r in done.rows
        if r.get("kind") == "page"
        and (r["state"] != "skipped" or r["error"] in ("not_html", "robots_disallowed"))
    )


def test_page_caps(site: RunningServer, tmp_path: Path) -> None:
    done = crawl(site, tmp_path / "a", CrawlOptions(max_pages=10))
    assert admitted(done) == 10
    assert ("page", "skipped", "page_limit") in done.classes()
    per_host = crawl(site, tmp_path / "b", CrawlOptions(max_pages_per_host=5))
    assert admitted(per_host) == 5


def test_include_exclude(site: RunningServer, tmp_path: Path) -> None:
    options = CrawlOptions(max_depth=3, include=(r"/site/p/",), exclude=(r"/p/[2-9]\.html",))
    done = crawl(site, tmp_path, options)
    # Only tree pages are followed, and of those 2..9 are excluded: 3 and 4 (children of 1)
    # and 2 (child of 0) are cut, and with them everything below.
    assert done.pages() == {site.url("/site/p/0.html"), site.url("/site/p/1.html")}
    assert ("page", "skipped", "excluded") in done.classes()


def test_ignore_robots(site: RunningServer, tmp_path: Path) -> None:
    done = crawl(site, tmp_path, CrawlOptions(max_depth=0, obey_robots=False))
    paths = done.paths()
    assert "/robots.txt" not in paths
    assert "/site/img/secret-0.jpg" in paths
    assert "/site/private/0.html" not in paths  # depth 0: links are not followed
    assert done.result.robots == "ignored"


def test_crawled_images_go_through_the_image_pipeline_into_shards(
    site: RunningServer, tmp_path: Path
) -> None:
    """With image options, a crawl stores what it finds as get does: resized, in shards."""
    import io
    import tarfile

    from PIL import Image

    from aiograb import ImageOptions, ImagePipeline

    pipeline = ImagePipeline(
        ImageOptions(resize="keep-ratio", image_size=32, encode="jpg"),
        workers=2,
        output="webdataset",
        shard_size=50,
    )
    out = tmp_path / "ds"
    crawled = crawl(site, out, CrawlOptions(max_pages=40), pipeline=pipeline)
    ok = crawled.images()
    assert ok  # the first 40 pages show images
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                data = tar.extractfile(member)
                assert data is not None
                samples.setdefault(key, {})[ext] = data.read()
    assert not list(out.glob("*.part"))
    urls = {json.loads(s["json"])["url"] for s in samples.values()}
    stored = {r["url"] for r in crawled.rows if r.get("kind") == "image" and r["state"] == "ok"
              and not r.get("duplicate_of") and r["url"].startswith("http")}  # fmt: skip
    assert stored
    assert urls >= stored
    for sample in samples.values():
        with Image.open(io.BytesIO(sample["jpg"])) as img:
            assert img.format == "JPEG"
            assert min(img.size) == 32  # keep-ratio: the short side becomes image_size


def test_a_page_redirected_out_of_scope_is_not_parsed(site: RunningServer, tmp_path: Path) -> None:
    import urllib.parse

    port = site.base_url.rsplit(":", 1)[1]
    elsewhere = f"http://localhost:{port}/site/p/0.html"  # another host: out of --scope host
    seed = site.url("/redirect-to?url=" + urllib.parse.quote(elsewhere, safe=""))
    # --allow-private: localhost is loopback like the seed, but another host name.
    options = CrawlOptions(scope="host", allow_private=True)
    crawled = crawl(site, tmp_path / "out", options, seeds=[seed])
    [row] = [r for r in crawled.rows if "/redirect-to" in r["url"]]
    assert (row["state"], row["error"]) == ("skipped", "out_of_scope")
    assert "redirected to localhost" in row["message"]
    assert len(crawled.rows) == 1  # nothing was discovered from it
    assert not [p for p in crawled.paths() if p.startswith("/site/p/1") or "/img/" in p]
