"""The baseline for ``bench_get.py``: a bare, competent aiohttp + uvloop bulk downloader.

``python benchmarks/bare_aiohttp.py URLS_FILE OUT_DIR --concurrency 500`` writes the
body of line i to ``OUT_DIR/<i>.bin``. One session, a bounded queue, N workers in a
TaskGroup, ``resp.read()``, plain open/write. No journal, hashing, validation or retries;
a failed URL is counted (so one error does not end the run), not retried.
"""

import argparse
import asyncio
import os

import aiohttp
import uvloop


async def main(urls_file: str, out_dir: str, concurrency: int) -> None:
    queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(maxsize=2 * concurrency)
    counts = {"ok": 0, "failed": 0}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                i, url = item
                try:
                    async with session.get(url) as resp:
                        resp.raise_for_status()
                        body = await resp.read()
                except (aiohttp.ClientError, TimeoutError):
                    counts["failed"] += 1
                    continue
                # Plain blocking open/write, as the baseline the issue asks for.
                with open(os.path.join(out_dir, f"{i}.bin"), "wb") as f:  # noqa: ASYNC230
                    f.write(body)
                counts["ok"] += 1

        async with asyncio.TaskGroup() as tg:
            for _ in range(concurrency):
                tg.create_task(worker())
            with open(urls_file) as lines:  # noqa: ASYNC230
                for i, line in enumerate(lines):
                    if url := line.strip():
                        await queue.put((i, url))
            for _ in range(concurrency):
                await queue.put(None)
    print(f"ok {counts['ok']} failed {counts['failed']}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls_file")
    parser.add_argument("out_dir")
    parser.add_argument("--concurrency", "-c", type=int, default=500)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    uvloop.run(main(args.urls_file, args.out_dir, args.concurrency))
