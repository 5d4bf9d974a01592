"""`manage.py bind_bacalhau_client --client ID_OR_PUBLIC_KEY --key PREFIX`"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.bacalhau.clients import bind_client
from dashboard.errors import DomainError


class Command(BaseCommand):
    help = "Let a Bacalhau legacy client (bacalhau-sdk's key) submit as a submitter key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--client", required=True, help="its client id (64 hex digits) or base64 public key"
        )
        parser.add_argument(
            "--key", required=True, help="the submitter key's prefix (fpk_ and 8 characters)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            client = bind_client(
                identity=options["client"], key_prefix=options["key"][:12], actor="cli"
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Bacalhau client {client.client_id} submits as {client.key.name}")
