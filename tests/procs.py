"""Real server processes for the network tests: nginx, tinyproxy and dante (danted).

Each writes its config into a test's folder, listens on 127.0.0.1 on a free
port, runs in the foreground as a child process and is stopped at the end.
The proxies connect out from 127.0.0.2 (still loopback), so a target server can
tell a request that came through the proxy from a direct one by its peer address.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "PROXY_SOURCE",
    "Proc",
    "danted",
    "free_port",
    "microsocks",
    "need",
    "nginx",
    "tinyproxy",
]

PROXY_SOURCE = "127.0.0.2"  # the address the proxies connect out from


def need(binary: str) -> str:
    """The path of a Debian server binary, or skip (scripts/test installs them as root)."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.skip(f"{binary} is not installed (scripts/test installs it when run as root)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Proc:
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_count(self, text: str, at_least: int = 1, wait: float = 5.0) -> int:
        """How often ``text`` is in the log, waiting (bounded) for ``at_least``: the
        server may write its line a moment after the client has its answer."""
        deadline = time.monotonic() + wait
        while (n := self.log_text().count(text)) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        return n


@contextmanager
def _running(argv: list[str], port: int, log: Path, out: Path) -> Iterator[Proc]:
    with out.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited: {out.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not listen on {port}") from None
                time.sleep(0.02)
        yield Proc(port, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def tinyproxy(folder: Path, *, basic_auth: tuple[str, str] | None = None) -> Iterator[Proc]:
    """tinyproxy (HTTP proxy, CONNECT for https) in the foreground; logs each connection."""
    binary = need("tinyproxy")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        f"Bind {PROXY_SOURCE}",
        "Timeout 30",
        f'LogFile "{log}"',
        "LogLevel Connect",
        "MaxClients 200",
        "Allow 127.0.0.1",
    ]
    if os.geteuid() == 0:  # else it would drop to nobody, who cannot write under tmp_path
        lines += ["User root", "Group root"]
    if basic_auth is not None:
        lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
    conf = folder / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    with _running([binary, "-d", "-c", str(conf)], port, log, folder / "tinyproxy.out") as proc:
        yield proc


@contextmanager
def danted(folder: Path) -> Iterator[Proc]:
    """dante's SOCKS5 server in the foreground, no authentication, logging each connect."""
    binary = need("danted")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "danted.log"
    conf = folder / "danted.conf"
    conf.write_text(
        f"""logoutput: {log}
internal: 127.0.0.1 port = {port}
external: {PROXY_SOURCE}
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: connect
}}
socks pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    command: connect
    log: connect
}}
"""
    )
    with _running([binary, "-f", str(conf), "-N", "1"], port, log, folder / "danted.out") as proc:
        yield proc


@contextmanager
def microsocks(folder: Path, user: str, password: str) -> Iterator[Proc]:
    """microsocks, a SOCKS5 server that takes a username and password (dante's
    ``username`` method would need a system account); its output is the log."""
    binary = need("microsocks")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "microsocks.out"
    argv = [binary, "-i", "127.0.0.1", "-p", str(port), "-u", user, "-P", password]
    with _running([*argv, "-b", PROXY_SOURCE], port, log, log) as proc:
        yield proc


@contextmanager
def nginx(
    folder: Path,
    root: Path,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    keepalive: bool = True,
    access_log: bool = True,
) -> Iterator[Proc]:
    """nginx serving ``root``, over TLS when ``cert``/``key`` are given, in the foreground."""
    binary = need("nginx")
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "access.log"
    tls = f"ssl_certificate {cert}; ssl_certificate_key {key};" if cert and key else ""
    temp = "".join(
        f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    {temp} uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
    types {{ image/jpeg jpg; image/png png; image/webp webp; image/gif gif; }}
    access_log {f"{log}" if access_log else "off"};
    keepalive_timeout {"65" if keepalive else "0"};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port}{" ssl" if tls else ""};
        {tls}
        root {root};
    }}
}}
"""
    )
    argv = [binary, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")]
    with _running(argv, port, log, folder / "nginx.out") as proc:
        yield proc
