"""The frontier's policy (caps, depth, what discoveries become) over a real journal."""

from __future__ import annotations

from pathlib import Path

from aiograb._crawl.frontier import Discovery, Frontier
from aiograb._store.crawl import CrawlTables
from aiograb._store.journal import JOURNAL_NAME, Journal, NewRow


def _open(tmp_path: Path, **caps: int) -> tuple[Journal, Frontier]:
    journal = Journal(tmp_path / JOURNAL_NAME)
    return journal, Frontier(CrawlTables(journal), **caps)


def _page(url: str, depth: int = 1) -> NewRow:
    return NewRow(url, url, kind="page", depth=depth)


def _states(journal: Journal) -> dict[str, tuple[str, str | None]]:
    return {r["url"]: (r["state"], r["error"]) for r in journal.rows()}


def test_page_caps_turn_pages_over_the_cap_into_page_limit_rows(tmp_path: Path) -> None:
    journal, frontier = _open(tmp_path, max_pages=3, max_pages_per_host=2)
    seeds = [(_page("http://a/", 0), "a")]
    assert frontier.add_seeds(seeds) == 1
    found = Discovery()
    for url, host in [("http://a/1", "a"), ("http://a/2", "a"), ("http://b/1", "b")]:
        found.add_page(_page(url), host)
    found.rows.append(NewRow("http://a/x.png", "http://a/x.png", kind="image", depth=1))
    found.edges.append(("http://a/x.png", "image", None))
    writer = frontier.writer(1, found)
    journal.flush(also=writer)
    assert writer.added == 3  # a/1, b/1 and the image; a/2 is over a's cap
    states = _states(journal)
    assert states["http://a/1"] == ("pending", None)
    assert states["http://a/2"] == ("skipped", "page_limit")
    assert states["http://b/1"] == ("pending", None)
    assert states["http://a/x.png"] == ("pending", None)  # images are not pages
    more = Discovery()
    more.add_page(_page("http://c/1"), "c")
    journal.flush(also=frontier.writer(1, more))
    assert _states(journal)["http://c/1"] == ("skipped", "page_limit")  # max_pages 3 reached
    journal.close()
    # Resumed: the counts come from the journal, not from memory.
    journal, frontier = _open(tmp_path, max_pages=10, max_pages_per_host=2)
    assert frontier.pages == 3
    assert frontier.host_pages("a") == 2
    again = Discovery()
    again.add_page(_page("http://a/3"), "a")
    journal.flush(also=frontier.writer(1, again))
    assert _states(journal)["http://a/3"] == ("skipped", "page_limit")
    journal.close()


def test_a_link_met_too_deep_is_let_in_when_met_shallower_or_when_depth_grows(
    tmp_path: Path,
) -> None:
    journal, frontier = _open(tmp_path)
    deep = NewRow(
        "http://a/deep", "http://a/deep", kind="page", depth=3, state="skipped", error="depth_limit"
    )
    deeper = NewRow(
        "http://a/far", "http://a/far", kind="page", depth=5, state="skipped", error="depth_limit"
    )
    frontier.add_seeds([(deep, None), (deeper, None)])
    shallow = Discovery()
    shallow.add_page(_page("http://a/deep", 1), "a")
    journal.flush(also=frontier.writer(0, shallow))
    assert _states(journal)["http://a/deep"] == ("pending", None)
    assert frontier.reopen_depth(4) == 0  # http://a/far is at depth 5
    assert frontier.reopen_depth(5) == 1
    assert _states(journal)["http://a/far"] == ("pending", None)
    assert frontier.host_pages("a") == 2
    journal.close()


def test_a_document_that_is_not_what_it_claimed_ends_skipped(tmp_path: Path) -> None:
    journal, frontier = _open(tmp_path)
    frontier.add_seeds([(_page("http://a/", 0), "a")])
    (row,) = journal.pending(0, 10)
    journal.flush(also=frontier.writer(row.id, Discovery(skip=("not_html", "Content-Type x"))))
    assert _states(journal)["http://a/"] == ("skipped", "not_html")
    frontier.skip(row.id, "robots_disallowed", "disallowed by robots.txt")
    assert _states(journal)["http://a/"] == ("skipped", "robots_disallowed")
    journal.close()


def test_one_documents_rows_are_written_as_if_one_by_one(tmp_path: Path) -> None:
    """The batched write keeps the row-by-row meaning: the first of two rows with one key
    wins, a link left too deep earlier in the same document is let in when met shallower
    later in it, a known key is not counted again, and every new row records its page."""
    journal, frontier = _open(tmp_path, max_pages_per_host=4)
    frontier.add_seeds([(_page("http://a/", 0), "a"), (_page("http://a/known"), "a")])
    (seed, _) = journal.pending(0, 10)
    found = Discovery()
    found.add_page(
        NewRow(
            "http://a/d", "http://a/d", kind="page", depth=4, state="skipped", error="depth_limit"
        ),
        "a",
    )
    found.add_page(_page("http://a/1"), "a")
    found.add_page(_page("http://a/1"), "a")  # the same link twice: one row, counted once
    found.add_page(_page("http://a/known"), "a")  # a seed already: not counted again
    found.add_page(_page("http://a/d", 1), "a")  # met shallower in the same page: let in
    found.add_page(_page("http://a/over"), "a")  # over a's cap: a/, a/known, a/1, a/d
    writer = frontier.writer(seed.id, found)
    journal.flush(also=writer)
    states = _states(journal)
    assert states["http://a/1"] == ("pending", None)
    assert states["http://a/d"] == ("pending", None)
    assert states["http://a/over"] == ("skipped", "page_limit")
    assert writer.added == 2  # a/1 and a/d
    assert frontier.host_pages("a") == 4
    found_on = {r["url"]: r["found_on"] for r in journal.rows()}
    assert found_on["http://a/1"] == found_on["http://a/d"] == seed.id
    assert found_on["http://a/known"] is None  # a seed, not found on the page
    journal.close()
    journal, frontier = _open(tmp_path, max_pages_per_host=4)
    assert frontier.host_pages("a") == 4  # the counts reached the journal
    journal.close()
