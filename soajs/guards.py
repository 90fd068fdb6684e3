"""Guards: a handler that needs a logged-in user, or a user in some groups.

The rule lives here, framework-free; :mod:`soajs.fastapi` (dependencies), :mod:`soajs.flask`
and :mod:`soajs.django` (view decorators) call :meth:`UserGuard.admit` and answer its
:class:`~soajs.header_policy.Rejection` in the gateway's error format:

- no usable context at all: the context rejection of
  :func:`~soajs.header_policy.context_or_rejection` (403, code 132, for no header), as
  :func:`soajs.fastapi.soajs_context` answers;
- a context without a user (``urac``): :data:`~soajs.header_policy.NO_USER`, 401, code 161;
- a user in none of the groups (or, with ``all``, not in every one):
  :data:`~soajs.header_policy.NOT_IN_GROUPS`, 403, code 160.

The adapters read the context through the container's ``context`` provider, so a test logs a
user in with ``container.context.override(providers.Object(context))``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from soajs.header_policy import NO_HEADER, NO_USER, NOT_IN_GROUPS, Rejection, context_or_rejection

if TYPE_CHECKING:
    from soajs.models.context import ContextData, Urac
    from soajs.request import RequestContext

__all__ = ["ANY_USER", "UserGuard", "guard_view", "require_groups", "require_user"]

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class UserGuard:
    """What a guarded handler requires: a user, and membership in ``groups`` when given.

    Attributes:
        groups: the groups that give access; empty means any logged-in user.
        all: the user must be in every group, rather than in one of them.
    """

    groups: frozenset[str] = frozenset()
    all: bool = False

    @classmethod
    def for_groups(cls, groups: tuple[str, ...], *, all: bool = False) -> UserGuard:  # noqa: A002
        """A guard for ``groups`` (at least one, each a group code).

        Raises:
            ValueError: no group given; ``require_groups("owner")`` names at least one.
        """
        if not groups:
            raise ValueError("require_groups needs at least one group code, e.g. 'owner'")
        return cls(frozenset(groups), all)

    def check(self, context: ContextData) -> Rejection | None:
        """Why ``context`` does not pass this guard, or ``None`` when it does."""
        urac = context.urac
        if urac is None:
            return NO_USER
        if not self.groups:
            return None
        held = set(urac.groups or ())
        admitted = self.groups <= held if self.all else not self.groups.isdisjoint(held)
        return None if admitted else NOT_IN_GROUPS

    def admit(
        self, context: ContextData | None, request: RequestContext | None
    ) -> Urac | Rejection:
        """The request's user, or why the guarded handler refuses the request.

        Args:
            context: the request's context (the container's ``context`` provider).
            request: the request being served, which says why there is no context.
        """
        if context is None:
            outcome = NO_HEADER if request is None else context_or_rejection(request)
            # A context provider overridden to None means "no context", whatever the header.
            return outcome if isinstance(outcome, Rejection) else NO_HEADER
        refused = self.check(context)
        if refused is not None:
            return refused
        urac = context.urac
        if urac is None:  # check() refused it already; this narrows the type
            return NO_USER
        return urac


ANY_USER = UserGuard()
"""The guard of :func:`require_user`: any logged-in user."""


def require_user(context: ContextData) -> Rejection | None:
    """Why ``context`` has no logged-in user (401, code 161), or ``None`` when it has one."""
    return ANY_USER.check(context)


def require_groups(
    context: ContextData,
    *groups: str,
    all: bool = False,  # noqa: A002 - the name the guards' users read
) -> Rejection | None:
    """Why ``context``'s user is not in ``groups`` (403, code 160; 401 without a user).

    ``None`` when the user is in one of them (in every one with ``all``).
    """
    return UserGuard.for_groups(groups, all=all).check(context)


def guard_view(view: View, refusal: Callable[[], object | None], *, is_async: bool) -> View:
    """``view``, answering ``refusal()`` instead of running it when that gives a response.

    The view decorators of :mod:`soajs.flask` and :mod:`soajs.django` are this with their own
    refusal (the guard's rejection as their framework's response) and coroutine test.
    """
    if is_async:

        @functools.wraps(view)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            refused = refusal()
            return refused if refused is not None else await view(*args, **kwargs)

        return cast("View", guarded_async)

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        refused = refusal()
        return refused if refused is not None else view(*args, **kwargs)

    return cast("View", guarded)
