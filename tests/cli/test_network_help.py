"""`--help` of get and crawl shows the network options, with examples."""

from __future__ import annotations

import pytest

from tests.helpers import aiograb_cli


@pytest.mark.parametrize("command", ["get", "crawl"])
def test_help_shows_network_options_with_examples(command: str) -> None:
    done = aiograb_cli(command, "--help")
    assert done.returncode == 0
    for flag in ("--ca-bundle", "--insecure", "--proxy URL", "--cookies FILE", "SSL_CERT_FILE"):
        assert flag in done.stdout, flag
    assert "network examples:" in done.stdout
    assert f"aiograb {command} " in done.stdout.split("network examples:")[1]
    assert "socks5h://" in done.stdout
    assert "tls_certificate" in done.stdout
