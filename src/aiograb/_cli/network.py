"""The network flags shared by ``get`` and ``crawl``: TLS, proxy, cookies."""

from __future__ import annotations

import argparse

from aiograb._cli.words import as_flags
from aiograb._core.config import Network
from aiograb._core.errors import UsageError

__all__ = ["NETWORK_EXAMPLES", "add_network_options", "network_from_args"]

NETWORK_EXAMPLES = """\
network examples:
  aiograb get urls.txt -o out/ --ca-bundle corp-ca.pem     # trust your own CA
  aiograb get urls.txt -o out/ --proxy http://user:pw@proxy.corp:3128
  aiograb get urls.txt -o out/ --proxy socks5h://127.0.0.1:1080   # DNS by the proxy
  aiograb get urls.txt -o out/ --cookies cookies.txt        # Netscape format (curl, wget)
  HTTPS_PROXY=http://proxy:3128 NO_PROXY=.corp aiograb get urls.txt -o out/
A certificate that fails verification is tls_certificate (the row says why:
unknown issuer, expired, hostname mismatch), another handshake failure tls_error;
neither is retried.
"""

# Library option names -> the flags that set them, for one-line CLI errors.
_FLAGS = {"ca_bundle": "--ca-bundle", "cookies": "--cookies", "proxy": "--proxy"}


def add_network_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network (TLS, proxy, cookies)")
    g.add_argument(
        "--ca-bundle",
        metavar="FILE",
        help="trust only the CA certificates in this PEM file (or c_rehash'ed folder) "
        "instead of the system's; without it SSL_CERT_FILE / SSL_CERT_DIR are honoured",
    )
    g.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (like curl -k)",
    )
    g.add_argument(
        "--proxy",
        metavar="URL",
        help="http://[user:pw@]host:port (CONNECT for https), socks5:// (names resolved "
        "here) or socks5h:// (resolved by the proxy). Default: HTTP_PROXY, HTTPS_PROXY, "
        "ALL_PROXY and NO_PROXY (or lower case) from the environment; --proxy '' ignores them",
    )
    g.add_argument(
        "--cookies",
        metavar="FILE",
        help="send the cookies of this Netscape cookies.txt where their domain, path and "
        "secure flags allow; cookies set by responses are kept for the run",
    )


def network_from_args(args: argparse.Namespace) -> Network:
    if args.insecure:
        # The user asked for it: the blocking engines' urllib3 would warn per request.
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    try:
        return Network(
            verify=not args.insecure,
            ca_bundle=args.ca_bundle,
            proxy=args.proxy,
            cookies=args.cookies,
        )
    except UsageError as exc:
        message = str(exc)
        for name, flag in _FLAGS.items():
            if message.startswith(name + ":"):
                message = flag + message[len(name) :]
        raise UsageError(as_flags(message)) from None
