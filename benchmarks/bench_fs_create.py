"""What creating a file costs the kernel, as aiograb's file sink creates one (a temp file
opened O_EXCL, written, closed, renamed into place), on each file system given, in a fresh
folder and then again right after as many files were deleted.

On an ext4 mounted without a journal (this machine's root file system), allocating an
inode skips the ones deleted in the last minutes (``recently_deleted`` in
fs/ext4/ialloc.c, used only when there is no journal), reading their inode blocks to
find out: so the cost per new file grows with the files recently deleted, and a
benchmark that deletes one round's output before the next measures that.

    python benchmarks/bench_fs_create.py --n 4000 /tmp /dev/shm
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def create(folder: Path, n: int, data: bytes) -> tuple[float, float]:
    """Microseconds of wall time and of kernel CPU per file."""
    folder.mkdir()
    t0, c0 = time.perf_counter(), os.times()
    for i in range(n):
        tmp = folder / f".{i}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, folder / f"{i:06d}.jpg")
    c1 = os.times()
    return (time.perf_counter() - t0) / n * 1e6, (c1.system - c0.system) / n * 1e6


def journal_of(path: Path) -> str:
    """'ext4, no journal' etc., from /proc/mounts and /proc/fs/jbd2 (Linux)."""
    best, fstype, dev = "", "?", ""
    with open("/proc/mounts", encoding="utf-8") as fh:
        for line in fh:
            device, point, kind = line.split()[:3]
            if str(path.resolve()).startswith(point) and len(point) > len(best):
                best, fstype, dev = point, kind, device
    if fstype != "ext4":
        return fstype
    name = Path(dev).name
    has = any(p.name.startswith(name) for p in Path("/proc/fs/jbd2").glob("*"))
    return "ext4, journal" if has else "ext4, no journal"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--size", type=int, default=14_000, help="bytes per file (default 14 KB)")
    args = p.parse_args()
    data = os.urandom(args.size)
    print("| where | file system | pass | wall µs/file | kernel CPU µs/file |")
    print("|---|---|---|---:|---:|")
    for path in args.paths:
        work = Path(tempfile.mkdtemp(prefix="aiograb-fs-create-", dir=path))
        try:
            kind = journal_of(path)
            for label in ("fresh folder", f"after deleting {args.n}", "after deleting 2x"):
                folder = work / label.replace(" ", "-")
                wall, sys_cpu = create(folder, args.n, data)
                print(f"| {path} | {kind} | {label} | {wall:.1f} | {sys_cpu:.1f} |", flush=True)
                shutil.rmtree(folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
