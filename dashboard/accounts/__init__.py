"""Moderator accounts: creating them, their roles, and signing in."""
