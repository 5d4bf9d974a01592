"""API keys and moderator accounts."""
