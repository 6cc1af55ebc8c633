"""The plan: parts by registrable domain, deterministic, streaming, split when too big."""

from __future__ import annotations

import json
from pathlib import Path

from aiograb._core.config import Limits
from aiograb._get.sources import InputRow
from aiograb._scale.plan import PART_INPUT, load_plan, make_plan, read_part_rows
from aiograb._scale.procs import part_limits


def _rows() -> list[InputRow]:
    rows = []
    line = 0
    for host, n in [("big.example.com", 60), ("a.shop.co.uk", 10), ("b.shop.co.uk", 10)]:
        for i in range(n):
            line += 1
            rows.append(InputRow(line=line, url=f"http://{host}/img/{i}.jpg"))
    for i in range(12):
        line += 1
        rows.append(InputRow(line=line, url=f"http://127.0.0.{i % 6 + 1}/x/{i}.png"))
    rows.append(InputRow(line=line + 1, url="http://big.example.com/img/3.jpg"))  # a repeat
    rows.append(InputRow(line=line + 2, url="not a url"))
    rows.append(InputRow(line=line + 3, url="", error="missing_url"))
    return rows


def _parts(out: Path) -> list[list[InputRow]]:
    plan = load_plan(out)
    assert plan is not None
    return [list(read_part_rows(plan.part_dir(p) / PART_INPUT)) for p in plan.parts]


def test_plan_is_deterministic_and_keeps_every_row_once(tmp_path: Path) -> None:
    a = make_plan(iter(_rows()), tmp_path / "a", 4)
    b = make_plan(iter(_rows()), tmp_path / "b", 4)
    assert a.parts == b.parts
    assert _parts(tmp_path / "a") == _parts(tmp_path / "b")
    lines = sorted(r.line for part in _parts(tmp_path / "a") for r in part)
    assert lines == sorted(r.line for r in _rows())
    assert a.rows == len(_rows())
    assert not (tmp_path / "a" / ".plan-spill.jsonl").exists()  # spill removed
    recorded = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert [p["rows"] for p in recorded["parts"]] == [p.rows for p in a.parts]


def test_a_domain_stays_in_one_part_unless_it_holds_more_than_its_share(tmp_path: Path) -> None:
    plan = make_plan(iter(_rows()), tmp_path, 4)
    parts = _parts(tmp_path)

    def holders(fragment: str) -> set[int]:
        return {i for i, rows in enumerate(parts) for r in rows if fragment in r.url}

    # 95 rows, share 24: big.example.com (61 rows) is split over ceil(61/24) = 3 parts.
    assert plan.split == {"example.com": 3}
    assert len(holders("big.example.com")) == 3
    # Subdomains of one registrable domain go together; each IP is its own "domain".
    assert len(holders(".shop.co.uk")) == 1
    for i in range(1, 7):
        assert len(holders(f"//127.0.0.{i}/")) == 1
    # A repeated URL of a split domain lands where its first copy is (fetched once).
    repeat = [
        i
        for i, rows in enumerate(parts)
        for r in rows
        if r.url.endswith("big.example.com/img/3.jpg")
    ]
    assert len(repeat) == 2
    assert len(set(repeat)) == 1
    # Parts that hold a share of the split domain divide the per-host limit.
    shared = [p for p in plan.parts if p.index in holders("big.example.com")]
    assert all(p.host_divisor == 3 for p in shared)
    limits = part_limits(Limits(concurrency=100, per_host=9, rate=6.0), shared[0], 2)
    assert (limits.concurrency, limits.per_host, limits.rate) == (50, 3, 2.0)


def test_a_killed_planning_run_plans_again(tmp_path: Path) -> None:
    (tmp_path / "parts" / "00000").mkdir(parents=True)
    (tmp_path / "parts" / "00000" / PART_INPUT).write_text("half a plan\n")
    assert load_plan(tmp_path) is None  # no plan.json: nothing counts
    plan = make_plan(iter(_rows()), tmp_path, 2)
    assert sum(len(p) for p in _parts(tmp_path)) == plan.rows == len(_rows())


def test_image_workers_are_shared_out_between_the_parts() -> None:
    from aiograb._images.pipeline import ImagePipeline

    whole = ImagePipeline(workers=5)
    part = whole.shared(2, 3)
    assert (part.workers, part.first_shard) == (2, 3_000_000)
    assert part.backlog == whole.backlog * 2 // 5
    assert whole.shared(8, 0).workers == 1  # at least one each
    assert (whole.workers, whole.first_shard) == (5, 0)  # the original is untouched


def test_the_planners_host_reading_agrees_with_urlsplit() -> None:
    """The fast path (a regular expression, hosts remembered) gives the domain the slow,
    general one gives (urlsplit + the suffix lookup), for tidy and odd URLs alike."""
    from urllib.parse import urlsplit

    from aiograb._crawl.scope import registrable_domain
    from aiograb._scale.plan import DomainOf

    urls = [
        "http://img.Example.COM/a.jpg",
        "https://a.shop.co.uk:8443/x?y=1",
        "HTTPS://b.shop.co.uk#frag",
        "http://user:pw@c.example.org/x",  # userinfo: the slow path
        "http://[::1]:8080/x",
        "http://127.0.0.1/x",
        "http://bücher.example/x",
        "http://a.example.com:notaport/x",
        "https://d.example.net",
        " http://spaced.example.com/x ",
    ]
    domain_of = DomainOf()
    for url in urls * 2:  # the second time from the remembered hosts
        try:
            host = (urlsplit(url.strip()).hostname or "").lower()
        except ValueError:
            host = ""
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        expected = registrable_domain(host) if host else ""
        assert domain_of(InputRow(line=1, url=url)) == expected, url


def test_part_rows_read_back_as_written(tmp_path: Path) -> None:
    rows = [
        InputRow(line=1, url='http://a/é"q\\x\u2028y'),
        InputRow(line=2, url="http://a/\x01"),
        InputRow(line=3, url="bad", error="invalid_url"),
        InputRow(line=4, url="http://a/x", extra={"caption": "ünï", "n": 3}),
    ]
    make_plan(iter(rows), tmp_path, 1)
    assert _parts(tmp_path) == [rows]
