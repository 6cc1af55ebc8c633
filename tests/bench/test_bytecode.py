"""A measured child finds its aiograb sources byte-compiled, as an installed wheel's are."""

from __future__ import annotations

from pathlib import Path

from aiograb.bench._measure import compile_bytecode


def _tree(root: Path) -> Path:
    package = root / "aiograb"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "mod.py").write_text("Y = 2\n")
    return package


def test_a_tree_on_the_childs_path_is_compiled(tmp_path: Path) -> None:
    given = _tree(tmp_path / "by-env")
    prefixed = _tree(tmp_path / "by-prefix")
    elsewhere = _tree(tmp_path / "not-on-the-path")
    compile_bytecode(
        {"PYTHONPATH": f"{tmp_path / 'missing'}:{given.parent}"},
        ["env", f"PYTHONPATH={prefixed.parent}", "python", "-m", "aiograb"],
    )
    for package in (given, prefixed):
        compiled = sorted(p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc"))
        assert compiled == ["__init__", "mod"]
    assert not (elsewhere / "__pycache__").exists()
