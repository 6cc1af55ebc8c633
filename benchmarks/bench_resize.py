"""Resize throughput per core: aiograb's image worker vs img2dataset's resizer (OpenCV).

The same JPEG files (the test server's ``medium`` and ``large`` pictures, 500-2600 px,
0.1-3 MB) are resized to 256 px (``keep-ratio``: the short side to 256) and re-encoded
as JPEG quality 90 by each side, in a child process of its own venv, one thread each
(img2dataset itself calls ``cv2.setNumThreads(1)``). A child first decodes every image
once (warm-up), then processes the set ``--reps`` times and reports the images done and
the CPU seconds it used (user + sys, all threads). The figure is images per CPU-second,
i.e. images/s per core. Rounds alternate which side goes first; the ratio is per round
(aiograb / img2dataset), and the median over rounds is reported.

    .venv/bin/python benchmarks/bench_resize.py \\
        --peer-python /work/venvs/img2dataset/bin/python --rounds 5 --json resize.json
    .venv/bin/python benchmarks/bench_resize.py --filters 32   # aiograb's filter choices
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(side: str, folder: Path, reps: int, size: int, quality: int, dump: Path) -> None:
    bodies = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]
    if side == "aiograb":
        from aiograb._images.work import ImageOptions, process

        options = ImageOptions(resize="keep-ratio", image_size=size, encode="jpg", quality=quality)

        def one(body: bytes) -> bytes:
            out = process(body, options).data
            assert out is not None
            return out
    else:
        from img2dataset.resizer import Resizer

        resizer = Resizer(
            image_size=size,
            resize_mode="keep_ratio",
            resize_only_if_bigger=False,
            encode_quality=quality,
            encode_format="jpg",
        )

        def one(body: bytes) -> bytes:
            out, *_, err = resizer(io.BytesIO(body))
            assert err is None, err
            return bytes(out)

    dump.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies):  # warm-up (imports, first calls); keep outputs
        (dump / f"{i:03d}.jpg").write_bytes(one(body))
    cpu0, t0 = _cpu(), time.perf_counter()
    total = 0
    for _ in range(reps):
        for body in bodies:
            total += len(one(body))
    cpu, wall = _cpu() - cpu0, time.perf_counter() - t0
    n = reps * len(bodies)
    print(json.dumps({"side": side, "images": n, "cpu": cpu, "wall": wall, "out_bytes": total}))


SIDES = ("aiograb", "img2dataset")


def psnr_vs_reference(folder: Path, side: str, size: int) -> float:
    """Mean PSNR of a side's outputs against a full decode resized with Lanczos (lossless)."""
    import math

    from PIL import Image, ImageChops, ImageStat

    from aiograb._images.work import target_size

    values = []
    for src in sorted(folder.glob("*.jpg")):
        ref = Image.open(src).convert("RGB")
        ref = ref.resize(target_size("keep-ratio", *ref.size, size), Image.Resampling.LANCZOS)
        out = Image.open(folder.parent / f"{folder.name}-{side}" / src.name).convert("RGB")
        if out.size != ref.size:
            out = out.resize(ref.size, Image.Resampling.LANCZOS)
        sq = ImageStat.Stat(ImageChops.difference(out, ref)).sum2
        mse = sum(sq) / (3 * ref.width * ref.height)
        values.append(10 * math.log10(255**2 / max(mse, 1e-9)))
    return sum(values) / len(values)


def filters(count: int) -> None:
    """aiograb's own fast-path choices: ms/image (CPU) and PSNR per downscale filter."""
    import math

    from PIL import Image, ImageChops, ImageStat

    import aiograb._images.work as work
    from aiograb.testing import image_bytes

    bodies = [image_bytes(i, "jpg", size="medium") for i in range(count)]
    refs = []
    for body in bodies:
        full = Image.open(io.BytesIO(body)).convert("RGB")
        refs.append(
            full.resize(work.target_size("keep-ratio", *full.size, 256), Image.Resampling.LANCZOS)
        )
    options = work.ImageOptions(resize="keep-ratio", image_size=256, encode="jpg", quality=90)
    variants = [
        ("LANCZOS", 1.0), ("BICUBIC", 1.0), ("BILINEAR", 1.0), ("BOX", 1.0), ("BOX", 1e9)
    ]  # fmt: skip
    for down, margin in variants:  # margin 1e9: the draft step never applies
        work._DOWNSCALE, work._DRAFT_MARGIN = down, margin
        outs = [work.process(b, options).data for b in bodies]
        cpu0 = _cpu()
        for _ in range(3):
            for b in bodies:
                work.process(b, options)
        ms = (_cpu() - cpu0) / (3 * len(bodies)) * 1000
        psnrs = []
        for out, ref in zip(outs, refs, strict=True):
            assert out is not None
            img = Image.open(io.BytesIO(out)).convert("RGB")
            mse = sum(ImageStat.Stat(ImageChops.difference(img, ref)).sum2) / (
                3 * ref.width * ref.height
            )
            psnrs.append(10 * math.log10(255**2 / max(mse, 1e-9)))
        draft = "with draft" if margin < 2 else "no draft"
        print(f"{down:8s} {draft}: {ms:.2f} ms/image, PSNR {sum(psnrs) / len(psnrs):.1f} dB")


def make_images(folder: Path, size_class: str, count: int) -> None:
    from aiograb.testing import image_bytes

    for i in range(count):
        (folder / f"{i:03d}.jpg").write_bytes(image_bytes(i, "jpg", size=size_class))


def run_child(python: str, side: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = [python, str(HERE), "--child", side, "--dir", str(folder), "--reps", str(args.reps)]
    cmd += ["--size", str(args.size), "--quality", str(args.quality)]
    cmd += ["--dump", str(folder.parent / f"{folder.name}-{side}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--child", choices=("aiograb", "img2dataset"))
    p.add_argument("--dir", type=Path)
    p.add_argument("--dump", type=Path)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--peer-python", default="/work/venvs/img2dataset/bin/python")
    p.add_argument("--classes", default="medium:64,large:16", help="size:count,...")
    p.add_argument("--json", type=Path)
    p.add_argument("--filters", type=int, metavar="N", help="compare downscale filters on N images")
    args = p.parse_args()
    if args.filters:
        filters(args.filters)
        return
    if args.child:
        child(args.child, args.dir, args.reps, args.size, args.quality, args.dump)
        return
    report: dict[str, object] = {"args": vars(args) | {"json": str(args.json), "dir": None}}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.classes.split(","):
            size_class, count = spec.split(":")
            folder = Path(tmp) / size_class
            folder.mkdir()
            make_images(folder, size_class, int(count))
            rounds = []
            for r in range(args.rounds):
                order = ["aiograb", "img2dataset"] if r % 2 == 0 else ["img2dataset", "aiograb"]
                res = {}
                for side in order:
                    python = sys.executable if side == "aiograb" else args.peer_python
                    res[side] = run_child(python, side, folder, args)
                ours = res["aiograb"]["images"] / res["aiograb"]["cpu"]
                theirs = res["img2dataset"]["images"] / res["img2dataset"]["cpu"]
                rounds.append({"aiograb": ours, "img2dataset": theirs, "ratio": ours / theirs})
                print(
                    f"{size_class} round {r + 1}: aiograb {ours:.1f} img/s/core, "
                    f"img2dataset {theirs:.1f} img/s/core, ratio {ours / theirs:.2f}",
                    flush=True,
                )
            ratios = [x["ratio"] for x in rounds]
            fidelity = {side: psnr_vs_reference(folder, side, args.size) for side in SIDES}
            summary = {
                "psnr_db_vs_full_lanczos": fidelity,
                "rounds": rounds,
                "median_ratio": statistics.median(ratios),
                "min_ratio": min(ratios),
                "max_ratio": max(ratios),
                "median_aiograb": statistics.median(x["aiograb"] for x in rounds),
                "median_img2dataset": statistics.median(x["img2dataset"] for x in rounds),
            }
            report[size_class] = summary
            print(
                f"{size_class}: median ratio {summary['median_ratio']:.2f} "
                f"(min {summary['min_ratio']:.2f}, max {summary['max_ratio']:.2f}); PSNR vs a "
                f"full decode + Lanczos: aiograb {fidelity['aiograb']:.1f} dB, "
                f"img2dataset {fidelity['img2dataset']:.1f} dB",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
