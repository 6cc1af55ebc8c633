"""Other downloaders found on PATH, run on the same workload as the engines
(``aiograb bench --peers``): ``curl --parallel``, ``aria2c`` and ``img2dataset``.

Each peer is a command line over a URL list; files that arrived are counted in
its output folder afterwards. They are measured from outside like the engines
(CPU, peak RSS, threads); their own start-up is inside their wall time.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PEERS", "Peer", "find_peers"]

CURL_MAX_PARALLEL = 300  # curl clamps --parallel-max to this


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    binary: str

    def command(self, urls: Sequence[str], out: Path, concurrency: int) -> list[str]:
        """The command line fetching ``urls`` into ``out`` (input files go beside ``out``)."""
        path = shutil.which(self.binary) or self.binary
        listing = out.parent / f"{self.name}-input.txt"
        if self.name == "curl":
            lines = [f'url = "{u}"\noutput = "{out / f"{i}.jpg"}"\n' for i, u in enumerate(urls)]
            listing.write_text("".join(lines), encoding="utf-8")
            return [
                path, "--parallel", "--parallel-immediate",
                "--parallel-max", str(min(concurrency, CURL_MAX_PARALLEL)),
                "--silent", "--show-error", "--fail", "--config", str(listing),
            ]  # fmt: skip
        if self.name == "aria2c":
            lines = [f"{u}\n  out={i}.jpg\n" for i, u in enumerate(urls)]
            listing.write_text("".join(lines), encoding="utf-8")
            return [
                path, "--input-file", str(listing), "--dir", str(out),
                "--max-concurrent-downloads", str(concurrency), "--split=1",
                "--max-connection-per-server=1", "--file-allocation=none",
                "--auto-file-renaming=false", "--allow-overwrite=true",
                "--console-log-level=error", "--summary-interval=0", "--quiet=true",
            ]  # fmt: skip
        if self.name == "img2dataset":
            listing.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
            return [
                path, f"--url_list={listing}", "--input_format=txt",
                f"--output_folder={out}", "--output_format=files",
                f"--thread_count={concurrency}", "--processes_count=1",
                "--resize_mode=no", "--disable_all_reencoding=True", "--retries=0",
                "--timeout=30", "--enable_wandb=False", "--distributor=multiprocessing",
                f"--number_sample_per_shard={max(1, len(urls))}",
            ]  # fmt: skip
        raise ValueError(f"unknown peer {self.name!r}")

    def count_ok(self, out: Path) -> int:
        """Complete images under ``out`` (non-empty, no aria2 partial-download marker)."""
        return sum(
            1
            for p in out.rglob("*.jpg")
            if p.is_file() and p.stat().st_size > 0
            and not p.with_name(p.name + ".aria2").exists()
        )  # fmt: skip

    def env(self) -> dict[str, str]:
        """Extra environment: keep img2dataset's albumentations from checking for updates."""
        return {"NO_ALBUMENTATIONS_UPDATE": "1"} if self.name == "img2dataset" else {}

    def note(self, concurrency: int) -> str | None:
        if self.name == "curl" and concurrency > CURL_MAX_PARALLEL:
            return f"curl clamps --parallel-max to {CURL_MAX_PARALLEL}"
        return None


PEERS = (Peer("curl", "curl"), Peer("aria2c", "aria2c"), Peer("img2dataset", "img2dataset"))


def find_peers() -> list[Peer]:
    """The peers whose binary is on PATH."""
    return [p for p in PEERS if shutil.which(p.binary)]
