"""The moderator pages: server-rendered function views over the selectors and services."""
