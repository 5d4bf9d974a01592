"""API keys for machines: making, revoking and checking them."""
