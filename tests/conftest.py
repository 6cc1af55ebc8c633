"""Fixtures: a real local server (aiograb.testing) on port 0, shared by the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aiograb.testing import RunningServer, serve_in_thread


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with serve_in_thread() as running:
        yield running


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--transport",
        choices=("aiohttp", "curl"),
        default=None,
        help="run the suite against this HTTP transport (sets AIOGRAB_TRANSPORT, which the "
        "library and the CLI subprocesses read when no transport is named)",
    )


def pytest_configure(config: pytest.Config) -> None:
    transport = config.getoption("--transport")
    if transport:
        os.environ["AIOGRAB_TRANSPORT"] = transport


# Known gaps of the libcurl transport, skipped (with the reason) under --transport curl
# so that the suite's second pass stays meaningful for everything else. Each is an
# open item of issue 13, listed in its report.
CURL_GAPS = {
    "tests/http/test_cookies.py::test_cookies_go_where_domain_path_and_secure_allow": (
        "libcurl treats http://localhost as a secure origin and sends Secure cookies there"
    ),
    "tests/http/test_cookies.py::test_a_response_cannot_set_a_cookie_for_a_public_suffix": (
        "libcurl's cookie engine applies its own domain rules to the loaded jar"
    ),
    **{
        f"tests/http/test_tls.py::{name}": "TLS failure messages and codes differ (libcurl's)"
        for name in (
            "test_hostname_mismatch_is_tls_certificate_not_retried[uvloop]",
            "test_hostname_mismatch_is_tls_certificate_not_retried[asyncio]",
            "test_unknown_issuer_is_tls_certificate",
            "test_another_cas_bundle_is_unknown_issuer",
            "test_cli_https_from_nginx[async]",
        )
    },
    **{
        "tests/client/test_client_hygiene.py::test_a_request_that_cannot_be_sent_is_an_error_"
        f"result[{bad}-refused-by-aiohttp]": "the case is aiohttp's own refusal of a bad request"
        for bad in ("crlf-value", "lf-name", "bad-method")
    },
    **{
        f"tests/http/test_proxies.py::{name}": "SOCKS5 with local DNS or credentials differs"
        for name in (
            "test_socks_proxy[https-socks5]",
            "test_socks_credentials_from_the_url[socks5]",
            "test_socks_credentials_from_the_url[socks5h]",
            "test_crawl_guard_checks_the_target_through_a_proxy[socks5]",
        )
    },
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("AIOGRAB_TRANSPORT") != "curl":
        return
    for item in items:
        reason = CURL_GAPS.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"curl transport gap: {reason}"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"aiograb transport: {os.environ.get('AIOGRAB_TRANSPORT') or 'aiohttp (default)'}"
