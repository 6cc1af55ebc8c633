"""One exception hierarchy for aiograb.

Per-URL failures never escape a run: the engine catches them and records
their ``code`` (a stable snake_case error class) in the journal and manifest.
They are raised only by the single-request API (``Client.fetch``) and inside
the engine. Usage errors are separate: they end a whole run before it starts.

::

    AiograbError
    ├── RequestError                  one URL could not be fetched; has .url, .code
    │   ├── InvalidURL                invalid_url, unsupported_scheme, invalid_encoding
    │   ├── InvalidRequest            invalid_request (e.g. CR/LF in a header; never sent)
    │   ├── TransportError            retryable network failures
    │   │   ├── ConnectError          connect_refused, dns_error, connect_error,
    │   │   │   │                     too_many_open_files (no descriptor for a new socket)
    │   │   │   ├── BlockedAddress    blocked_address (private/loopback/metadata; not retried)
    │   │   │   ├── ProxyError        proxy_error (proxy unreachable or refused the request)
    │   │   │   └── TLSError          tls_error: the TLS handshake failed (not retried)
    │   │   │       └── TLSCertificateError  tls_certificate: the certificate failed
    │   │   │                         verification (unknown issuer, expired, hostname)
    │   │   ├── Timeout               timeout
    │   │   ├── ConnectionReset       connection_reset
    │   │   ├── Truncated             truncated
    │   │   └── ProtocolError         protocol_error
    │   ├── HTTPStatusError           http_404, http_503, ... (.status)
    │   ├── RedirectError             redirect_loop, too_many_redirects, bad_redirect
    │   ├── ContentError              the body is not what was asked for
    │   │   ├── TooLarge              too_large
    │   │   ├── BadEncoding           bad_encoding (Content-Encoding says gzip, the body is not)
    │   │   ├── HashMismatch          hash_mismatch (the body's hash is not the input's)
    │   │   ├── NotAccepted           not_image, unaccepted_type, empty_body
    │   │   ├── RobotsTagDisallowed   x_robots_tag (an X-Robots-Tag directive forbids it)
    │   │   ├── WriteError            write_error (disk full, permissions)
    │   │   │   ├── TooManyOpenFiles  too_many_open_files (EMFILE/ENFILE; retried)
    │   │   │   ├── DiskFull          disk_full (ENOSPC, EDQUOT: the run stops; retried next run)
    │   │   │   └── NotWritable       not_writable (EACCES, EPERM, EROFS: the run stops; retried
    │   │   │                         next run)
    │   │   └── ImageError            corrupt_image, too_many_pixels, too_small,
    │   │                             bad_aspect_ratio, not_raster, unsupported_image,
    │   │                             worker_crashed, worker_timeout (image pipeline)
    │   └── DeadlineExceeded          deadline_exceeded (the caller's overall deadline)
    └── UsageError                    bad options or unusable input; CLI exit code 2
        └── InputError                missing file, unknown column, unreadable format
"""

from __future__ import annotations

import errno

__all__ = [
    "AiograbError",
    "BadEncoding",
    "BlockedAddress",
    "ConnectError",
    "ConnectionReset",
    "ContentError",
    "DeadlineExceeded",
    "DiskFull",
    "HTTPStatusError",
    "HashMismatch",
    "ImageError",
    "InputError",
    "InvalidRequest",
    "InvalidURL",
    "NotAccepted",
    "NotWritable",
    "ProtocolError",
    "ProxyError",
    "RedirectError",
    "RequestError",
    "RobotsTagDisallowed",
    "TLSCertificateError",
    "TLSError",
    "Timeout",
    "TooLarge",
    "TooManyOpenFiles",
    "TransportError",
    "Truncated",
    "UsageError",
    "WriteError",
    "socket_error",
    "write_error",
]


class AiograbError(Exception):
    """Base class of every error aiograb raises on purpose."""


class RequestError(AiograbError):
    """One request failed. ``code`` is the stable error class written to the manifest."""

    code: str = "request_error"
    retryable: bool = False

    def __init__(self, message: str, *, url: str = "", code: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidURL(RequestError):
    code = "invalid_url"


class InvalidRequest(RequestError):
    """A request that cannot be sent as given (a header with CR/LF, a bad method)."""

    code = "invalid_request"


class TransportError(RequestError):
    code = "transport_error"
    retryable = True


class ConnectError(TransportError):
    code = "connect_error"


class BlockedAddress(ConnectError):
    """A host resolved to an address the run may not connect to (SSRF guard). Not retried."""

    code = "blocked_address"
    retryable = False


class ProxyError(ConnectError):
    """The proxy could not be reached (retried) or refused to connect us (not retried)."""

    code = "proxy_error"


class TLSError(ConnectError):
    """The TLS handshake failed (wrong protocol, no shared cipher, ...). Not retried."""

    code = "tls_error"
    retryable = False


class TLSCertificateError(TLSError):
    """The server's certificate failed verification; the message says why. Not retried."""

    code = "tls_certificate"


class Timeout(TransportError):
    code = "timeout"


class ConnectionReset(TransportError):
    code = "connection_reset"


class Truncated(TransportError):
    code = "truncated"


class ProtocolError(TransportError):
    code = "protocol_error"


class HTTPStatusError(RequestError):
    """A final status that is not a success. 408, 429 and 5xx are retried."""

    def __init__(
        self, status: int, *, url: str = "", retry_after: float | None = None, detail: str = ""
    ) -> None:
        message = f"HTTP {status} ({detail})" if detail else f"HTTP {status}"
        super().__init__(message, url=url, code=f"http_{status}")
        self.status = status
        self.retry_after = retry_after
        self.retryable = status in (408, 429) or status >= 500


class RedirectError(RequestError):
    code = "redirect_error"


class ContentError(RequestError):
    code = "content_error"


class RobotsTagDisallowed(ContentError):
    """The response's ``X-Robots-Tag`` names a directive of ``disallowed_header_directives``."""

    code = "x_robots_tag"


class TooLarge(ContentError):
    code = "too_large"


class BadEncoding(ContentError):
    """The body is not in the Content-Encoding the response names (fake gzip): not retried."""

    code = "bad_encoding"


class HashMismatch(ContentError):
    """The body's sha256/md5 differs from the hash column of the input (``verify_hash``)."""

    code = "hash_mismatch"


class NotAccepted(ContentError):
    code = "not_image"


class WriteError(ContentError):
    code = "write_error"


class TooManyOpenFiles(WriteError):
    """Out of file descriptors (EMFILE, ENFILE) for a moment: retried, not a crash."""

    code = "too_many_open_files"
    retryable = True


class DiskFull(WriteError):
    """No space left (ENOSPC, EDQUOT): the run stops cleanly; the next run retries these rows."""

    code = "disk_full"


class NotWritable(WriteError):
    """The file system refused a write into OUT (EACCES, EPERM, EROFS): its folder was
    made read-only during the run (a chmod, a remount). Not the URL's fault: the run
    stops cleanly, as on a full disk, and the next run retries these rows."""

    code = "not_writable"


NO_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def socket_error(os_errno: int, reason: str, url: str) -> ConnectError:
    """The ConnectError of a socket that could not be opened (the request never left):
    ``too_many_open_files`` when the process or the system is out of descriptors, the
    manifest's class for the same shortage while storing, retried as a connect error."""
    if os_errno in NO_DESCRIPTORS:
        return ConnectError(
            f"cannot open a socket: {reason} (raise 'ulimit -n' or lower the concurrency)",
            url=url,
            code="too_many_open_files",
        )
    return ConnectError(f"cannot open a socket: {reason}", url=url)


def write_error(message: str, exc: OSError) -> WriteError:
    """The WriteError for an OSError: TooManyOpenFiles (retryable) for EMFILE/ENFILE,
    DiskFull for ENOSPC/EDQUOT, NotWritable for EACCES/EPERM/EROFS, else a plain WriteError."""
    if exc.errno in NO_DESCRIPTORS:
        return TooManyOpenFiles(message)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(message)
    if exc.errno in READ_ONLY:
        return NotWritable(message)
    return WriteError(message)


class ImageError(ContentError):
    """The image pipeline refused or could not process a body; ``code`` says why."""

    code = "image_error"


class DeadlineExceeded(RequestError):
    code = "deadline_exceeded"


class UsageError(AiograbError):
    """The run cannot start: bad options. The CLI prints one line and exits 2."""


class InputError(UsageError):
    """The input as a whole is unusable: missing file, unknown column, unreadable format."""
