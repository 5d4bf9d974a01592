"""Writing the audit log. Called from service functions inside their transaction."""

from __future__ import annotations

from typing import Any

from dashboard.models import AuditEvent


def record(
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor, action=action, target=target, before=before, after=after, reason=reason
    )
