"""Scope checks shared by the API views: one access rule per kind of caller."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from dashboard.access import role_of
from dashboard.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.views import APIView


def api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class ScopePermission(BasePermission):
    """Machine keys of the given scopes; moderators' browser sessions on reads."""

    scopes: tuple[str, ...] = ()
    message = "this API key's scope may not use this endpoint"

    def has_permission(self, request: Request, view: APIView) -> bool:
        key = api_key(request)
        if key is not None and key.scope == ApiKey.Scope.PROBE:
            # It rides in a Bacalhau node's probe URL (and so in proxies' logs): the probe,
            # which checks its key itself, is all it may do.
            self.message = "a probe key answers Bacalhau probes only"
            return False
        if key is not None:
            return not self.scopes or key.scope in self.scopes
        if request.method in SAFE_METHODS and role_of(request.user) is not None:
            return True
        self.message = "only moderators may use the API from a browser session"
        return False


class AnyKeyOrSession(ScopePermission):
    """Reads open to every key, and to moderators' browser sessions."""

    scopes = ()


class NodeKey(ScopePermission):
    scopes = (ApiKey.Scope.NODE,)


class SubmitterOrNodeKey(ScopePermission):
    """Writes by a submitter's or a compute node's key (a cancel, an upload)."""

    scopes = (ApiKey.Scope.SUBMITTER, ApiKey.Scope.NODE)


class SubmitOrReadJobs(ScopePermission):
    """The jobs collection and a job: submitter and node keys submit; those, moderator keys
    and moderators' sessions read."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        self.scopes = (
            (ApiKey.Scope.SUBMITTER, ApiKey.Scope.NODE)
            if request.method == "POST"
            else (ApiKey.Scope.SUBMITTER, ApiKey.Scope.NODE, ApiKey.Scope.MODERATOR)
        )
        return super().has_permission(request, view)


class _KeyOnly(ScopePermission):
    """Writes that need a machine key of the scope; a browser session never qualifies."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return api_key(request) is not None and super().has_permission(request, view)


class NotaryKey(_KeyOnly):
    scopes = (ApiKey.Scope.NOTARY,)


class ModeratorKey(_KeyOnly):
    # Decisions by script; moderators in a browser decide through the pages.
    scopes = (ApiKey.Scope.MODERATOR,)
