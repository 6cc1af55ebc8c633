"""A ``Network`` config as libcurl options: TLS trust, the proxy of each URL, cookies.

Checked once, before the run starts, as for the aiohttp transport: a bad CA bundle
or cookie file is a ``UsageError``. The proxy of a URL is chosen by the same
``ProxyRoutes`` (environment, ``no_proxy``), never by libcurl's own reading of the
environment; libcurl speaks ``http://`` (CONNECT for https), ``socks5://`` and
``socks5h://`` itself, credentials taken from the proxy's URL. libcurl's cookie
engine stays off: cookies are the aiohttp transport's jar and policy
(``cookies.CookiePolicy``), asked by the transport for each request.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pycurl
from yarl import URL

from aiograb._core.config import Network
from aiograb._http.network import Proxy, ProxyRoutes, ssl_context

if TYPE_CHECKING:
    from aiograb._http.cookies import CookiePolicy
    from aiograb._http.curl_exchange import Easy

__all__ = ["CurlNetwork"]


class CurlNetwork:
    """What every easy handle gets (``configure``) and what each request gets (``proxy``)."""

    def __init__(self, network: Network, environ: Mapping[str, str] | None = None) -> None:
        # A bad ca_bundle is a UsageError now, not per URL. Without one there is nothing
        # to check, and loading the system's store into a context costs ~45 ms.
        if network.ca_bundle is not None:
            ssl_context(network)
        self._verify = network.verify
        self._ca_file, self._ca_dir = _trust(network)
        routes = ProxyRoutes(network.proxy, environ)
        self._routes = routes if routes else None
        # None without a cookie file: nothing is sent or kept, and no work per request.
        self.cookies: CookiePolicy | None = None
        if network.cookies:
            from aiograb._http.cookies import CookiePolicy, read_cookies  # aiohttp's jar

            self.cookies = CookiePolicy(read_cookies(network.cookies))

    def configure(self, easy: Easy) -> None:
        """Options of every handle (again after a ``reset``)."""
        handle = easy.curl
        handle.setopt(pycurl.PROXY, "")  # libcurl must not read *_proxy itself
        if not self._verify:
            handle.setopt(pycurl.SSL_VERIFYPEER, 0)
            handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        else:
            if self._ca_file:
                handle.setopt(pycurl.CAINFO, self._ca_file)
            if self._ca_dir:
                handle.setopt(pycurl.CAPATH, self._ca_dir)
        easy.proxy = None

    def proxy(self, easy: Easy, url: URL) -> Proxy | None:
        """Point ``handle`` at the proxy for ``url``; return it (None: direct)."""
        if self._routes is None:
            return None
        chosen = self._routes.for_url(url)
        if chosen is not easy.proxy:  # a handle mostly serves the same route
            easy.curl.setopt(pycurl.PROXY, str(chosen.url) if chosen is not None else "")
            easy.proxy = chosen
        return chosen


def _trust(network: Network) -> tuple[str | None, str | None]:
    """(CA file, CA folder) for libcurl: ``ca_bundle``, else the system's store as
    Python's OpenSSL finds it (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), since a
    wheel's libcurl may carry another default path."""
    if network.ca_bundle is not None:
        if os.path.isdir(network.ca_bundle):
            return None, network.ca_bundle
        return network.ca_bundle, None
    paths = ssl.get_default_verify_paths()
    ca_file = os.environ.get(paths.openssl_cafile_env) or paths.cafile
    ca_dir = os.environ.get(paths.openssl_capath_env) or paths.capath
    return (
        ca_file if ca_file and os.path.isfile(ca_file) else None,
        ca_dir if ca_dir and os.path.isdir(ca_dir) else None,
    )
