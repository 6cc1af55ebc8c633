"""The library speaks its option names; the CLI says the same thing with its flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiograb import (
    ImageOptions,
    ImagePipeline,
    Limits,
    Network,
    RequestPolicy,
    Timeouts,
    UsageError,
)
from aiograb._cli.words import as_flags
from tests.helpers import aiograb_cli


@pytest.mark.parametrize(
    ("make", "library_words"),
    [
        (lambda: Limits(per_host=-1), "per_host must be >= 0"),
        (lambda: RequestPolicy(max_bytes=-1), "max_bytes must be >= 0"),
        (lambda: RequestPolicy(max_redirects=101), "max_redirects must be between"),
        (lambda: Timeouts(total=0), "Timeouts.total must be > 0"),
        (lambda: ImageOptions(image_size=0), "image_size must be >= 1"),
        (lambda: ImagePipeline(shard_size=0), "shard_size must be >= 1"),
        (
            lambda: Network(verify=False, ca_bundle=__file__),
            "ca_bundle and verify=False exclude each other",
        ),
    ],
)
def test_library_errors_name_options_not_flags(make: object, library_words: str) -> None:
    with pytest.raises(UsageError) as caught:
        make()  # type: ignore[operator]
    assert library_words in str(caught.value)
    assert "--" not in str(caught.value)


def test_as_flags_translates_whole_names_only() -> None:
    assert as_flags("max_bytes must be >= 0") == "--max-bytes must be >= 0"
    assert as_flags("Timeouts.total must be > 0") == "--timeout must be > 0"
    assert as_flags("body exceeds max_bytes=5") == "body exceeds --max-bytes=5"
    assert as_flags("my_max_bytes and max_bytes_x stay") == "my_max_bytes and max_bytes_x stay"


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--per-host", "-1"], "aiograb: error: --per-host must be >= 0"),
        (["--timeout", "0"], "aiograb: error: --timeout must be > 0"),
        (["--image-size", "0"], "aiograb: error: --image-size must be >= 1"),
        (
            ["--ca-bundle", __file__, "--insecure"],
            "aiograb: error: --ca-bundle and --insecure exclude each other",
        ),
    ],
)
def test_cli_says_flags(tmp_path: Path, flags: list[str], said: str) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a.png\n")
    result = aiograb_cli("get", urls, "-o", tmp_path / "out", *flags)
    assert result.returncode == 2
    assert said in result.stderr
