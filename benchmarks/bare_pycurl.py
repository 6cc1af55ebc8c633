"""The libcurl baseline for ``bench_peers.py``: a bare pycurl multi + uvloop bulk downloader.

``python benchmarks/bare_pycurl.py URLS_FILE OUT_DIR --concurrency 500`` writes the body of
line i to ``OUT_DIR/<i>.bin``. libcurl's multi interface is driven by the loop (its
sockets on ``add_reader``/``add_writer``, its timer on ``call_later``), one easy handle
per transfer in flight, reused; at most N transfers at once, the next URL started as one
ends. No journal, hashing, validation or retries; a failed URL is counted, not retried.
It is the floor under aiograb's default transport: the same C doing the HTTP, and
nothing of aiograb around it.

Two steps up the ladder from that floor towards aiograb (issue #13: where its extra CPU
per file goes), each measured beside the others in ``bench_peers.py``:

- ``--tasks``: the same transfers awaited by coroutines, one at a time per worker (N
  workers, as aiograb's engine has), each file's body awaited on a future that the
  transfer's end resolves: the cost of a coroutine per file, and nothing else;
- ``--tasks --safe``: also what aiograb guarantees of a stored file, in its plainest
  form: the body's SHA-256, written to a temporary file and renamed into a folder per
  key prefix (as aiograb's ``files`` sink), the type checked by its first bytes;
- ``--tasks --safe --journal``: also the record of every URL, in its plainest form: the
  input's rows inserted into a SQLite journal (WAL, ``synchronous=NORMAL``) in batches
  of 2,000 before they are fetched, each outcome (state, path, size, SHA-256, status)
  buffered and committed every 1,000 rows, and at the end ``manifest.jsonl`` written
  from the journal (one JSON object a row) and renamed into place. With it, the ladder's
  top is a downloader with every guarantee issue #13 asks aiograb to keep, and no more.
"""

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator

import pycurl
import uvloop


def store_plainly(out_dir: str, i: int, body: bytes) -> bool:
    with open(os.path.join(out_dir, f"{i}.bin"), "wb") as f:
        f.write(body)
    return True


def store_safely(out_dir: str, i: int, body: bytes) -> tuple[str, str] | None:
    """What aiograb does with a body, in its plainest form (``--safe``): its path and
    SHA-256 once stored, None when its first bytes are not an image's."""
    if not body.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8", b"RIFF")):
        return None
    key = hashlib.sha256(str(i).encode()).hexdigest()[:32]
    digest = hashlib.sha256(body).hexdigest()
    tmp = os.path.join(out_dir, ".tmp", f"{key}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, body)
    finally:
        os.close(fd)
    folder = os.path.join(out_dir, key[:2])
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    os.replace(tmp, os.path.join(folder, f"{key}.bin"))
    return f"{key[:2]}/{key}.bin", digest


class PlainJournal:
    """Every URL's row and outcome in SQLite, and the manifest from it (``--journal``)."""

    COLUMNS = ("id", "url", "state", "path", "bytes", "sha256", "status")

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, key TEXT NOT NULL"
            " UNIQUE, url TEXT NOT NULL, state TEXT NOT NULL, path TEXT, bytes INTEGER,"
            " sha256 TEXT, status INTEGER)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS items_state ON items(state, id)")
        self.updates: list[tuple[object, ...]] = []

    def pending(self, lines: Iterator[str]) -> Iterator[tuple[int, str]]:
        """The input's URLs, inserted 2,000 at a time, then read back with their ids."""
        last = 0
        while chunk := list(itertools.islice(lines, 2000)):
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR IGNORE INTO items (key, url, state) VALUES (?, ?, 'pending')",
                [(u, u) for line in chunk if (u := line.strip())],
            )
            self.db.execute("COMMIT")
            rows = self.db.execute(
                "SELECT id, url FROM items WHERE state='pending' AND id>? ORDER BY id", (last,)
            ).fetchall()
            if rows:
                last = rows[-1][0]
            yield from rows

    def record(self, i: int, state: str, path: str | None, size: int | None,
               sha256: str | None, status: int | None) -> None:  # fmt: skip
        self.updates.append((state, path, size, sha256, status, i))
        if len(self.updates) >= 1000:
            self.flush()

    def flush(self) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "UPDATE items SET state=?, path=?, bytes=?, sha256=?, status=? WHERE id=?",
            self.updates,
        )
        self.db.execute("COMMIT")
        self.updates.clear()

    def write_manifest(self, path: str) -> None:
        self.flush()
        encoder = json.JSONEncoder(ensure_ascii=False)
        columns = self.COLUMNS
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            for values in self.db.execute(f"SELECT {', '.join(columns)} FROM items ORDER BY id"):
                fh.write(encoder.encode(dict(zip(columns, values, strict=True))) + "\n")
        os.replace(path + ".tmp", path)
        self.db.close()


async def main(urls_file: str, out_dir: str, concurrency: int, *, tasks: bool = False,
               safe: bool = False, journal: bool = False) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, concurrency)
    multi.setopt(pycurl.M_MAXCONNECTS, concurrency)
    watched: dict[int, int] = {}
    timer: list[asyncio.TimerHandle | None] = [None]
    active: dict[pycurl.Curl, tuple[int, list[bytes]]] = {}
    idle: list[pycurl.Curl] = []
    counts = {"ok": 0, "failed": 0}
    done = loop.create_future()
    lines = open(urls_file)  # noqa: ASYNC230, SIM115 (read as transfers end)
    numbered: Iterator[tuple[int, str]]
    numbered = ((i, u) for i, line in enumerate(lines) if (u := line.strip()))
    plain = PlainJournal(os.path.join(out_dir, "journal.sqlite")) if journal else None
    if plain is not None:
        numbered = plain.pending(lines)

    def start_next() -> None:
        for i, url in numbered:
            handle = idle.pop() if idle else pycurl.Curl()
            chunks: list[bytes] = []
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.WRITEFUNCTION, chunks.append)
            active[handle] = (i, chunks)
            multi.add_handle(handle)
            return
        if not active and not done.done():
            done.set_result(None)

    def finish(handle: pycurl.Curl, ok: bool) -> None:
        multi.remove_handle(handle)
        if tasks:
            future = waiting.pop(handle)
            idle.append(handle)
            future.set_result(ok and handle.getinfo(pycurl.RESPONSE_CODE) == 200)
            return
        i, chunks = active.pop(handle)
        idle.append(handle)
        if ok and handle.getinfo(pycurl.RESPONSE_CODE) == 200:
            # Plain blocking open/write, as bare_aiohttp.py does.
            with open(os.path.join(out_dir, f"{i}.bin"), "wb") as f:
                f.write(b"".join(chunks))
            counts["ok"] += 1
        else:
            counts["failed"] += 1
        start_next()

    def act(fd: int, event: int) -> None:
        multi.socket_action(fd, event)
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                finish(handle, True)
            for handle, _errno, _message in failed:
                finish(handle, False)
            if not queued:
                break

    def on_socket(what: int, fd: int, _multi: object, _socketp: object) -> None:
        before = watched.pop(fd, 0)
        if before & pycurl.POLL_IN:
            loop.remove_reader(fd)
        if before & pycurl.POLL_OUT:
            loop.remove_writer(fd)
        if what == pycurl.POLL_REMOVE:
            return
        if what & pycurl.POLL_IN:
            loop.add_reader(fd, act, fd, pycurl.CSELECT_IN)
        if what & pycurl.POLL_OUT:
            loop.add_writer(fd, act, fd, pycurl.CSELECT_OUT)
        watched[fd] = what

    def on_timer(ms: int) -> None:
        if timer[0] is not None:
            timer[0].cancel()
        timer[0] = None if ms < 0 else loop.call_later(ms / 1000, act, pycurl.SOCKET_TIMEOUT, 0)

    waiting: dict[pycurl.Curl, asyncio.Future[bool]] = {}

    async def worker() -> None:
        for i, url in numbered:
            handle = idle.pop() if idle else pycurl.Curl()
            chunks: list[bytes] = []
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.WRITEFUNCTION, chunks.append)
            waiting[handle] = future = loop.create_future()
            multi.add_handle(handle)
            if not await future:
                counts["failed"] += 1
                if plain is not None:
                    plain.record(i, "failed", None, None, None, None)
                continue
            body = b"".join(chunks)
            stored = store_safely(out_dir, i, body) if safe else store_plainly(out_dir, i, body)
            counts["ok" if stored else "failed"] += 1
            if plain is not None:
                path, digest = stored if isinstance(stored, tuple) else (None, None)
                plain.record(i, "ok" if stored else "failed", path, len(body), digest, 200)

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    try:
        if tasks:
            os.makedirs(os.path.join(out_dir, ".tmp"), exist_ok=True)
            async with asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(worker())
        else:
            for _ in range(concurrency):
                start_next()
            await done
        if plain is not None:
            plain.write_manifest(os.path.join(out_dir, "manifest.jsonl"))
    finally:
        lines.close()
        for fd, what in watched.items():
            if what & pycurl.POLL_IN:
                loop.remove_reader(fd)
            if what & pycurl.POLL_OUT:
                loop.remove_writer(fd)
        if timer[0] is not None:
            timer[0].cancel()
        multi.close()
    print(f"ok {counts['ok']} failed {counts['failed']}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls_file")
    parser.add_argument("out_dir")
    parser.add_argument("--concurrency", "-c", type=int, default=500)
    parser.add_argument("--tasks", action="store_true", help="a coroutine per file")
    parser.add_argument("--safe", action="store_true", help="with --tasks: hash, check, rename")
    parser.add_argument("--journal", action="store_true", help="with --safe: journal, manifest")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    uvloop.run(
        main(
            args.urls_file,
            args.out_dir,
            args.concurrency,
            tasks=args.tasks,
            safe=args.safe,
            journal=args.journal,
        )
    )
