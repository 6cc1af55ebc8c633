"""The public API: every ``__all__`` name resolves lazily, as typed; ``crawl`` takes a pipeline."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import aiograb
from aiograb.testing import RunningServer


def test_every_public_name_resolves_from_a_fresh_import() -> None:
    # A fresh interpreter: nothing else has imported the modules behind the names.
    script = (
        "import sys, aiograb\n"
        "assert 'aiograb._get.api' not in sys.modules\n"
        "missing = [n for n in aiograb.__all__ if getattr(aiograb, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert 'aiograb._get.api' in sys.modules\n"
        "from aiograb import *\n"
        "print(download.__module__, ImagePipeline.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["aiograb._get.api", "ImagePipeline"]


def test_each_name_is_the_object_of_its_module() -> None:
    lazy: dict[str, str] = aiograb._LAZY  # type: ignore[attr-defined]
    assert set(lazy) | {"__version__"} == set(aiograb.__all__)
    for name, module in lazy.items():
        assert getattr(aiograb, name) is getattr(importlib.import_module(module), name), name


def test_type_checking_imports_match_the_lazy_table() -> None:
    # mypy and IDEs read the `if TYPE_CHECKING:` imports, the interpreter the table:
    # they must name the same object for every name.
    tree = ast.parse(inspect.getsource(aiograb))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    typed = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == aiograb._LAZY  # type: ignore[attr-defined]


def test_dir_lists_all_and_unknown_names_raise_attribute_error() -> None:
    assert set(aiograb.__all__) <= set(dir(aiograb))
    with pytest.raises(AttributeError, match="no attribute 'downlaod'"):
        _ = aiograb.downlaod  # type: ignore[attr-defined]
    # Subpackages are still imported as such, not shadowed by __getattr__.
    from aiograb import testing

    assert testing.__name__ == "aiograb.testing"


def test_public_crawl_takes_an_image_pipeline(server: RunningServer, tmp_path: Path) -> None:
    pipeline = aiograb.ImagePipeline(
        aiograb.ImageOptions(resize="keep-ratio", image_size=24, encode="jpg"),
        workers=1,
        output="webdataset",
        shard_size=20,
    )
    out = tmp_path / "ds"
    result = aiograb.crawl(
        server.url("/site/p/0.html"),
        out,
        options=aiograb.CrawlOptions(max_pages=5),
        limits=aiograb.Limits(concurrency=16, per_host=0),
        pipeline=pipeline,
    )
    images = result.kinds["image"].get("ok", 0)
    assert images > 0
    members = []
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members += [m.name for m in tar.getmembers() if m.name.endswith(".jpg")]
    assert len(members) == images  # every image went through the pipeline into shards
    plain = [p for p in out.glob("*/*") if p.suffix in (".jpg", ".png", ".gif", ".webp")]
    assert not plain  # and none was stored as a plain file
