"""Moderation: decisions and the DataCap they grant."""
