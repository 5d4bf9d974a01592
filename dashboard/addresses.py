"""A storage provider's address as keys, results, awards and settings name it: an ID address,
`f0` and the actor id. A module of its own, with no Django, so that settings.py can use it."""

from __future__ import annotations

import re

PROVIDER_ADDRESS = re.compile(r"f0\d{1,20}")


def id_address(actor_id: int) -> str:
    """The ID address of an actor the chain names by number (a claim's provider and client)."""
    return f"f0{actor_id}"
