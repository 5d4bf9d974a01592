"""Which submitter key a Bacalhau legacy client submits as: an admin binds the client's id
(or its public key, from which the id follows) to a submitter key."""

from __future__ import annotations

import re

from django.db import transaction

from dashboard.audit import record
from dashboard.bacalhau.rsa import BadKey, client_id, parse_public_key
from dashboard.errors import DomainError
from dashboard.models import ApiKey, BacalhauClient

__all__ = ["CLIENT_ID", "bind_client", "client_id_of"]

CLIENT_ID = re.compile(r"[0-9a-f]{64}")


def client_id_of(identity: str) -> str:
    """A client id as given (64 hex digits, any case), or the id of a base64 public key."""
    text = identity.strip()
    if CLIENT_ID.fullmatch(text.lower()):
        return text.lower()
    try:
        return client_id(parse_public_key(text))
    except BadKey as exc:
        raise DomainError(
            "invalid_client",
            f"not a Bacalhau client id (64 hex digits) or an RSA public key: {exc}",
            fields={"client": identity[:100]},
        ) from None


def bind_client(*, identity: str, key_prefix: str, actor: str) -> BacalhauClient:
    """Bind a client to an active submitter key (rebinding moves it), audited."""
    cid = client_id_of(identity)
    key = ApiKey.objects.filter(prefix=key_prefix, revoked_at__isnull=True).first()
    if key is None or key.scope != ApiKey.Scope.SUBMITTER:
        raise DomainError(
            "invalid_key",
            "a Bacalhau client is bound to an active submitter key",
            fields={"key": key_prefix},
        )
    with transaction.atomic():
        existing = BacalhauClient.objects.select_for_update().filter(client_id=cid).first()
        before = {"key": existing.key.prefix} if existing is not None else None
        client, _ = BacalhauClient.objects.update_or_create(client_id=cid, defaults={"key": key})
        record(
            actor=actor,
            action="bacalhau_client.bind",
            target=f"bacalhau_client:{cid}",
            before=before,
            after={"key": key.prefix, "name": key.name},
        )
    return client
