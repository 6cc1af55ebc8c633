"""The libcurl baseline for ``bench_peers.py``: a bare pycurl multi + uvloop bulk downloader.

``python benchmarks/bare_pycurl.py URLS_FILE OUT_DIR --concurrency 500`` writes the body of
line i to ``OUT_DIR/<i>.bin``. libcurl's multi interface is driven by the loop (its
sockets on ``add_reader``/``add_writer``, its timer on ``call_later``), one easy handle
per transfer in flight, reused; at most N transfers at once, the next URL started as one
ends. No journal, hashing, validation or retries; a failed URL is counted, not retried.
It is the floor under aiograb's default transport: the same C doing the HTTP, and
nothing of aiograb around it.
"""

import argparse
import asyncio
import os

import pycurl
import uvloop


async def main(urls_file: str, out_dir: str, concurrency: int) -> None:
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
    numbered = ((i, u) for i, line in enumerate(lines) if (u := line.strip()))

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

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)
    try:
        for _ in range(concurrency):
            start_next()
        await done
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
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    uvloop.run(main(args.urls_file, args.out_dir, args.concurrency))
