"""QuiverDB's exceptions, shared by the embedded engine and the HTTP client.

Every error QuiverDB raises is a :class:`QuiverError`. The subclasses also derive from the built-in exception a
Python programmer would expect (``InvalidArgument`` is a ``ValueError``, ``NotFound`` a ``LookupError``,
``Timeout`` a ``TimeoutError``), so ``except ValueError`` keeps working. Messages are the server's: they name the
field, what was expected and what was given.
"""

from __future__ import annotations

from typing import Optional


class QuiverError(Exception):
    """Any QuiverDB error. ``status`` is the HTTP status when the error came from a server, else ``None``."""

    status: Optional[int] = None

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InvalidArgument(QuiverError, ValueError):
    """Bad input: the message names the field, what was expected and what was given. Nothing was changed."""


class NotFound(QuiverError, LookupError):
    """No such collection, point or snapshot."""


class AlreadyExists(QuiverError):
    """A collection with that name exists."""


class Conflict(QuiverError, ValueError):
    """The request conflicts with the server's state (409 other than an existing collection): a ``min_seq`` or
    read token beyond every write the collection was given, a cluster route on a single node."""


class Corrupt(QuiverError):
    """Stored bytes failed a checksum or structure check; the data is reported, never served."""


class Unavailable(QuiverError):
    """The collection or server cannot answer now (it could not be opened, or the server is starting)."""


class Closed(QuiverError):
    """The database (or collection) was closed."""


class Locked(QuiverError):
    """Another process has the data directory open."""


class Timeout(QuiverError, TimeoutError):
    """A wait ran out (``min_seq`` not applied in time, or the server's deadline passed)."""


class ChangesGone(QuiverError):
    """The change feed no longer holds the operations asked for."""


class Unauthorized(QuiverError, PermissionError):
    """Missing or wrong API key (401), or a read-only key used for a write (403)."""


class ServerError(QuiverError):
    """The server failed (5xx other than 503/504); the message is the server's."""


class Unsupported(QuiverError, NotImplementedError):
    """The call exists but this mode cannot serve it (the message says which mode can)."""


_BY_STATUS = {
    400: InvalidArgument,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: AlreadyExists,
    410: ChangesGone,
    413: InvalidArgument,
    422: InvalidArgument,
    503: Unavailable,
    504: Timeout,
}


def from_status(status: int, message: str) -> QuiverError:
    """The exception for an HTTP error reply."""
    cls = _BY_STATUS.get(status)
    if status == 409 and "already exists" not in message:
        cls = Conflict
    if cls is None:
        cls = ServerError if status >= 500 else QuiverError
    return cls(message, status)


__all__ = [
    "QuiverError",
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Corrupt",
    "Unavailable",
    "Closed",
    "Locked",
    "Timeout",
    "ChangesGone",
    "Unauthorized",
    "ServerError",
    "Unsupported",
]
