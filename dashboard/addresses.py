"""A storage provider's address as keys, results, awards and settings name it: an ID address,
`f0` and the actor id; and how a piece CID reads, for the API's fields and the locations
selector alike. A module of its own, with no Django, so that settings.py can use it."""

from __future__ import annotations

import re

PROVIDER_ADDRESS = re.compile(r"f0\d{1,20}")
PIECE_PREFIX = "baga6ea4seaq"  # CIDv1, fil-commitment-unsealed, sha2-256-trunc254-padded


def id_address(actor_id: int) -> str:
    """The ID address of an actor the chain names by number (a claim's provider and client)."""
    return f"f0{actor_id}"
