"""The errors soajs raises: one base, a few a caller would catch separately."""

from __future__ import annotations

__all__ = [
    "ConfigValidationError",
    "ConnectError",
    "GatewayUnavailable",
    "InjectHeaderError",
    "NotFound",
    "RegistryDeadlineExceeded",
    "RegistryError",
    "RegistryFetchStopped",
    "RegistryNotLoaded",
    "RegistryRejected",
    "RegistryReplyMalformed",
    "RegistryReplyTooLarge",
    "SettingsError",
    "SoajsError",
    "missing_extra_message",
]


class SoajsError(Exception):
    """Base of every error raised by soajs."""


class SettingsError(SoajsError, ValueError):
    """A ``SOAJS_*`` setting is missing or invalid; the message names the variable."""


class ConfigValidationError(SoajsError, ValueError):
    """The service configuration (``soajs.Config``) is invalid; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RegistryError(SoajsError):
    """Base of the errors met while talking to the gateway's maintenance API."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class GatewayUnavailable(RegistryError):
    """The gateway could not be reached, timed out, or answered with an HTTP error.

    Attributes:
        status_code: the HTTP status of an error reply; ``None`` when nothing answered.
    """

    def __init__(
        self, message: str, *, url: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


class RegistryDeadlineExceeded(GatewayUnavailable):
    """A call to the gateway did not finish within ``SOAJS_REGISTRY_FETCH_DEADLINE``.

    Attributes:
        limit: the deadline, in seconds.
    """

    def __init__(self, message: str, *, url: str | None = None, limit: float) -> None:
        super().__init__(message, url=url)
        self.limit = limit


class RegistryFetchStopped(RegistryError):
    """A call to the gateway was cut short by :meth:`~soajs.RegistryManager.stop`."""


class RegistryNotLoaded(RegistryError):
    """The registry is read before any has loaded (the gateway has not answered yet).

    The framework integrations answer it with HTTP 503, code 135, in the gateway's error
    format (see :mod:`soajs.readiness`).
    """


class RegistryRejected(RegistryError):
    """The gateway answered ``result: false``."""


class RegistryReplyMalformed(RegistryError):
    """The gateway answered, but not with a usable registry or registration reply."""


class RegistryReplyTooLarge(RegistryReplyMalformed):
    """The gateway's reply is longer than ``SOAJS_REGISTRY_MAX_REPLY_SIZE``; it was not kept.

    Attributes:
        limit: the largest reply accepted, in bytes.
    """

    def __init__(self, message: str, *, url: str | None = None, limit: int) -> None:
        super().__init__(message, url=url)
        self.limit = limit


class NotFound(SoajsError, LookupError):
    """A database, service, resource or custom registry entry is not in the registry."""


class InjectHeaderError(SoajsError, ValueError):
    """The ``soajsinjectobj`` header is missing, too large, not JSON, or not the gateway's shape."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class ConnectError(SoajsError):
    """A service-to-service call cannot be addressed (no awareness in the context), or one of its
    headers holds a value no HTTP header can carry (the message names the header)."""


def missing_extra_message(feature: str, module: str, extra: str) -> str:
    """Say that ``feature`` needs a module that is not installed, and which extra brings it.

    Args:
        feature: what cannot run, e.g. ``"soajs gateway"``.
        module: the missing distribution, as a user knows it, e.g. ``"PyYAML"``.
        extra: the soajs-python extra that installs it, e.g. ``"gateway"``.
    """
    return f"{feature} needs {module}, which is not installed: pip install 'soajs-python[{extra}]'"
