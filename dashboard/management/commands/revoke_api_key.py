"""`manage.py revoke_api_key PREFIX`"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import DomainError
from dashboard.keys.services import revoke_api_key


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the first 12 characters); it stops working at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = revoke_api_key(prefix=options["prefix"][:12], actor="cli")
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"revoked {key.scope} key {key.name!r} ({key.prefix})")
