"""The exception tree of loreweave.

Every error the library raises on purpose derives from :class:`LoreweaveError`; foreign errors
(SQLAlchemy, provider SDKs, HTTP clients) are translated at the boundary with ``raise ... from``.
The command line and the HTTP API turn these into one readable line or a 4xx answer.

    LoreweaveError
    ├── ConfigurationError          bad setting, unknown key, malformed value
    ├── DatabaseError
    │   ├── DatabaseUnavailable     cannot connect
    │   └── SchemaOutOfDate         database behind the code's migrations
    ├── NotFound                    an id that does not exist (or is not visible)
    ├── Forbidden                   an API key limited to other worlds
    ├── Conflict                    a uniqueness or state conflict
    │   └── ConcurrentChange        a note changed under a rewrite, again and again
    ├── LeaseLost                   a job's claim expired, or a transcript cut it (.cut)
    ├── InvalidInput                input that fails validation
    └── ProviderError               an LLM or embedding provider failed (.retriable)
        ├── RateLimited             429 (.retry_after)            retriable
        ├── ProviderUnavailable     5xx, connection, timeout      retriable
        │   └── ProviderUnreachable no connection at all            retriable
        ├── AuthenticationFailed    401/403                       final
        ├── RequestRejected         other 4xx                     final
        └── InvalidResponse         unusable output, after repair final
            └── MalformedResponse   a body that is not the API's JSON retriable
"""

from __future__ import annotations


class LoreweaveError(Exception):
    """Base of every error loreweave raises on purpose."""


class ConfigurationError(LoreweaveError):
    """A setting is unknown, malformed or inconsistent."""


class DatabaseError(LoreweaveError):
    """The database cannot be used as configured."""


class DatabaseUnavailable(DatabaseError):
    """The database server cannot be reached or refused the connection."""


class SchemaOutOfDate(DatabaseError):
    """The database schema is behind (or ahead of) the migrations this code knows."""

    def __init__(self, message: str, *, current: str | None, expected: str) -> None:
        super().__init__(message)
        self.current = current
        self.expected = expected


class NotFound(LoreweaveError):
    """An object does not exist, or is not visible from where it was asked for."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key


class Forbidden(LoreweaveError):
    """The API key may not do this (it is limited to some worlds)."""


class Conflict(LoreweaveError):
    """The request conflicts with the current state (a duplicate, a finished task...)."""


class ConcurrentChange(Conflict):
    """What a job read kept changing under it (compare-and-set lost every time): retriable."""


class LeaseLost(LoreweaveError):
    """A job's claim expired and it went to another worker, or (``cut``) a transcript change
    cancelled or handed back its jobs: this worker's result is dropped."""

    def __init__(self, message: str, *, cut: bool = False) -> None:
        super().__init__(message)
        self.cut = cut


class InvalidInput(LoreweaveError):
    """Input that fails validation."""


class ProviderError(LoreweaveError):
    """An LLM or embedding provider failed.  ``retriable`` tells the queue layer whether trying
    the same request again later may succeed."""

    retriable = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}" if provider else message)
        self.provider = provider
        self.status = status  # the HTTP status the provider answered, when it answered one


class RateLimited(ProviderError):
    """HTTP 429.  ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    retriable = True

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None):
        super().__init__(message, provider=provider, status=429)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """A 5xx answer, a connection failure or a timeout."""

    retriable = True


class ProviderUnreachable(ProviderUnavailable):
    """No connection at all (refused, or closed before any answer): after the provider has
    answered, its server has stopped (:class:`~loreweave.llm.resilience.Resilience` then
    reports it down once and tries it at a slow pace)."""


class AuthenticationFailed(ProviderError):
    """HTTP 401/403: a missing or wrong API key.  Never retried."""


class RequestRejected(ProviderError):
    """Any other 4xx: the request itself is wrong.  Never retried."""


class InvalidResponse(ProviderError):
    """The answer could not be used: not the JSON asked for, even after one repair request; an
    empty or runaway text; or a request a scripted cassette cannot answer."""


class MalformedResponse(InvalidResponse):
    """The HTTP body was not the API's JSON at all (cut off, garbled): a transport glitch,
    worth another try."""

    retriable = True
