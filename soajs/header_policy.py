"""Whether a request is served: the header policy and the one table of rejections.

Every integration admits a request through :class:`HeaderGuard` (the ASGI and WSGI
middlewares, Django's middleware) and the FastAPI ``soajs_context`` dependency refuses with
:func:`context_or_rejection`: the rules below live here and nowhere else.

Header policy (``Settings.header_policy``, ``SOAJS_HEADER_POLICY``):

- ``"ignore"`` (default, like the reference middlewares): a missing, malformed, oversized or
  untrusted header gives no context; the request goes on and the handler decides.
- ``"reject"``: the header is checked before the app runs (the one case where it is parsed
  eagerly) and a request without a valid, trusted one is answered in the gateway's error
  format, ``{"result": false, "errors": {"codes": [N], "details": [{"code": N, ...}]}}``:

  ================================  ======  ====  =============================================
  outcome                           status  code  why this code
  ================================  ======  ====  =============================================
  no header                         403     132   the gateway's "A valid key is needed" (no key)
  header from an untrusted peer     403     132   same: the caller did not come through the key
  header over ``max_size``          431     135   the gateway's own code for an oversized header
  not JSON / not the gateway shape  400     135   the gateway's "error while redirecting" code
  two or more ``soajsinjectobj``    400     135   one invalid header, whichever line is forged
  ================================  ======  ====  =============================================

  The user guards (:mod:`soajs.guards`), which a handler asks for whatever the policy, refuse
  a request that has a context in the same format:

  ================================  ======  ====  =============================================
  outcome                           status  code  why this code
  ================================  ======  ====  =============================================
  no logged-in user (``urac``)      401     161   the gateway's "You need to be logged in to
                                                  access this API" (its status too)
  user not in the required groups   403     160   the gateway's "You do not belong to a group
                                                  with access to this system API" (the gateway
                                                  answers it 401; 403 is HTTP's "known, not
                                                  allowed")
  ================================  ======  ====  =============================================

  A WebSocket is refused in the same cases by closing it before it is accepted (close code
  1008, policy violation; the server answers the handshake with 403).

  A header that soajs core gives no context (no truthy ``tenant``, ``key`` or
  ``application.package``) counts as no header.

``Settings.trusted_gateways`` (``SOAJS_TRUSTED_GATEWAYS``, IPs/CIDRs) restricts who may send the
header: from any other peer it is dropped and logged (``ignore``) or refused (``reject``). A
public service (``extKeyRequired: false``) must pass ``trust_header=False``: the gateway does not
strip a client's own ``soajsinjectobj`` from requests to such services, so the header is never
trusted there and the policy does not apply.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple

from soajs.request import RequestContext

if TYPE_CHECKING:
    from soajs.models.context import ContextData
    from soajs.settings import Settings

__all__ = [
    "NOT_IN_GROUPS",
    "NO_HEADER",
    "NO_USER",
    "UNTRUSTED_PEER",
    "HeaderGuard",
    "Rejection",
    "context_or_rejection",
]

# The logger the header policy has always used: logging set up for it keeps working.
logger = logging.getLogger("soajs.context")


class Rejection(NamedTuple):
    """Why a request is refused: HTTP status, gateway error code, message."""

    status: int
    code: int
    message: str

    def body(self) -> bytes:
        """The gateway's error body: ``{"result": false, "errors": {"codes", "details"}}``."""
        payload = {
            "result": False,
            "errors": {
                "codes": [self.code],
                "details": [{"code": self.code, "message": self.message}],
            },
        }
        return json.dumps(payload, separators=(",", ":")).encode()


NO_HEADER: Final = Rejection(
    403, 132, "A valid key is needed to access any API: no soajsinjectobj header"
)
"""No header, or one that soajs core gives no context."""

UNTRUSTED_PEER: Final = Rejection(
    403,
    132,
    "A valid key is needed to access any API: the soajsinjectobj header did not come from a "
    "trusted gateway",
)
"""A header from a peer that may not send one (or on a public service)."""

NO_USER: Final = Rejection(401, 161, "You need to be logged in to access this API.")
"""A guarded handler and no logged-in user (no ``urac`` in the context)."""

NOT_IN_GROUPS: Final = Rejection(
    403, 160, "You do not belong to a group with access to this system API."
)
"""A guarded handler and a user in none (or, with ``all``, not all) of its groups."""

_TOO_LARGE_STATUS: Final = 431
_BAD_HEADER_STATUS: Final = 400
_BAD_HEADER_CODE: Final = 135


def context_or_rejection(request: RequestContext) -> ContextData | Rejection:
    """The request's context, or why a request without one is refused (the table above).

    This parses the header if nothing read it before; the context stays cached.
    """
    if not request.trusted and request.has_header:
        return UNTRUSTED_PEER
    context = request.context
    if context is not None:
        return context
    error = request.error
    if error is None or error.code == "missing":
        return NO_HEADER
    status = _TOO_LARGE_STATUS if error.code == "too_large" else _BAD_HEADER_STATUS
    return Rejection(status, _BAD_HEADER_CODE, f"Invalid soajsinjectobj header: {error}")


class HeaderGuard:
    """The header policy of one middleware, from :class:`~soajs.settings.Settings`.

    ``trusted_gateways`` (IPs/CIDRs) lists the peers that may send the header; empty trusts
    every peer, and the first guard built so in a process logs a warning saying that any peer
    can assert a tenant. IPv4-mapped IPv6 peers (``::ffff:10.0.0.1``) are their IPv4 address.
    Answers are cached per address (bounded), so a check costs one dictionary lookup.
    ``trust_header=False`` (public services) trusts no one, and then the ``reject`` policy does
    not apply: such a service never gets a header it could use.

    A request carries one ``soajsinjectobj`` header. Two or more are one invalid header
    (``InjectHeaderError`` code ``"duplicate"`` where the server passes each line, as ASGI
    servers do; not JSON where it joins them with ``,``, as WSGI servers and Django do): no
    context, or 400 with code 135 under ``reject``, on every server.

    With the defaults (``ignore``, every peer trusted) a request is only captured, and read
    when someone asks; with ``reject`` or ``trusted_gateways`` (:attr:`eager`) it is checked
    as it arrives.

    Args:
        settings: ``header_policy``, ``trusted_gateways`` and ``max_inject_header_size``.
        trust_header: whether the header may be trusted at all.
    """

    _CACHE_LIMIT: ClassVar[int] = 4096

    def __init__(self, settings: Settings, *, trust_header: bool = True) -> None:
        self.trust_header = trust_header
        self.networks = settings.trusted_gateways
        self.reject = trust_header and settings.header_policy == "reject"
        self.max_size = settings.max_inject_header_size
        # Checking now costs every request a header scan: only when a policy depends on it.
        self.eager = trust_header and (self.reject or bool(self.networks))
        self._cache: dict[str | None, bool] = {}
        if trust_header and not self.networks:
            _warn_open_allowlist()

    def admit_scope(self, scope: Any) -> RequestContext | Rejection:
        """The request of an ASGI HTTP or WebSocket scope, or why it is refused.

        The request's path into the app: captured, then checked now only when the policy is
        :attr:`eager` (the ``ignore`` defaults read nothing until someone asks).
        """
        request = RequestContext.from_scope(scope, self)
        return self._admit(request) if self.eager else request

    def admit_environ(self, environ: Mapping[str, Any]) -> RequestContext | Rejection:
        """The request of a WSGI environ (or Django's ``request.META``), or why it is refused.

        Pass the environ the server gave (see :meth:`admit_scope`).
        """
        request = RequestContext.from_environ(environ, self)
        return self._admit(request) if self.eager else request

    def _admit(self, request: RequestContext) -> RequestContext | Rejection:
        """Check a request as it arrives (an :attr:`eager` policy): log, then refuse or serve."""
        if not request.trusted:  # the common, trusted case calls nothing more
            self.note_untrusted(request)
        if self.reject:
            refused = self.check(request)
            if refused is not None:
                return refused
        return request

    def is_trusted(self, peer: str | None) -> bool:
        """Tell whether a header from ``peer`` (an IP; ``None`` for a Unix socket) is trusted."""
        if not self.trust_header:
            return False
        if not self.networks:
            return True
        trusted = self._cache.get(peer)
        if trusted is None:
            trusted = self._in_networks(peer)
            if len(self._cache) < self._CACHE_LIMIT:
                self._cache[peer] = trusted
        return trusted

    def _in_networks(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def capture_scope(self, scope: Any) -> RequestContext:
        """Capture an ASGI HTTP scope under this policy (see :meth:`capture_environ`)."""
        request = RequestContext.from_scope(scope, self)
        if self.eager:
            self.note_untrusted(request)
        return request

    def capture_environ(self, environ: Mapping[str, Any]) -> RequestContext:
        """Capture a WSGI environ (or Django's ``request.META``) under this policy.

        Nothing is read until someone asks, unless the policy needs it now (:attr:`eager`):
        the trust decision is then made on the address the request arrived with, before the
        app (or a proxy-header fix inside it) could change it, and a header from an untrusted
        peer is noted in the log.
        """
        request = RequestContext.from_environ(environ, self)
        if self.eager:
            self.note_untrusted(request)
        return request

    def note_untrusted(self, request: RequestContext) -> None:
        """Log a header dropped because its peer is not a trusted gateway (never its content)."""
        if self.trust_header and not request.trusted and request.has_header:
            logger.warning("dropped a soajsinjectobj header from untrusted peer %s", request.peer)

    def check(self, request: RequestContext) -> Rejection | None:
        """Under the ``reject`` policy, why ``request`` must be refused; ``None`` to serve it.

        This parses the header (the price of rejecting); the context stays cached.
        """
        if not self.reject:
            return None
        outcome = context_or_rejection(request)
        return outcome if isinstance(outcome, Rejection) else None


_open_allowlist_warned = False
_open_allowlist_lock = threading.Lock()


def _warn_open_allowlist() -> None:
    """Say once per process that the header is believed from any peer."""
    global _open_allowlist_warned  # noqa: PLW0603 - one flag per process is the point
    with _open_allowlist_lock:
        if _open_allowlist_warned:
            return
        _open_allowlist_warned = True
    logger.warning(
        "SOAJS_TRUSTED_GATEWAYS is empty: any peer that reaches this service can send a "
        "soajsinjectobj header and assert a tenant and a user; list the gateways (and the "
        "services that call this one through the mesh) allowed to send it"
    )
