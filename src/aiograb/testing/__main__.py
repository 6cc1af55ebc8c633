"""``python -m aiograb.testing``: run the test server until SIGINT/SIGTERM.

The first line printed is ``serving on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse

from aiograb.testing._server import serve
from aiograb.testing._state import ServerConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m aiograb.testing",
        description="Run aiograb's local test server (images, latency, faults) on loopback.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="0 picks a free port (default %(default)s)"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each response")
    parser.add_argument(
        "--bandwidth-kbps", type=float, default=0.0, help="body pace in kilobits/s (0 = unlimited)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="record requests in memory (off by default, for speed)",
    )
    parser.add_argument(
        "--site-pages", type=int, default=300, help="pages of the generated site under /site/"
    )
    parser.add_argument("--warm", action="store_true", help="draw all small images before serving")
    args = parser.parse_args(argv)
    try:
        config = ServerConfig(
            latency_ms=args.latency_ms,
            bandwidth_kbps=args.bandwidth_kbps,
            seed=args.seed,
            record=args.record,
            site_pages=args.site_pages,
        )
        serve(args.host, args.port, config, warm=args.warm)
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
