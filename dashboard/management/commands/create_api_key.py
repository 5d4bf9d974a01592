"""`manage.py create_api_key --scope node|notary|submitter|moderator|probe --name NAME ...`"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.errors import DomainError
from dashboard.keys.services import create_api_key
from dashboard.models import ApiKey


class Command(BaseCommand):
    help = "Create a scoped API key; the raw key is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scope", required=True, choices=ApiKey.Scope.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--provider", default="", help="node keys: the node's f0… address")
        parser.add_argument("--user", default=None, help="moderator keys: the moderator account")
        parser.add_argument(
            "--verifier",
            action="store_true",
            help="node keys: the node offers to re-execute other nodes' jobs (executor verify)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key, raw = create_api_key(
                scope=options["scope"],
                name=options["name"],
                provider=options["provider"],
                username=options["user"],
                verifier=options["verifier"],
                actor="cli",
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(
            f"created {key.scope} key {key.name!r} (prefix {key.prefix}); "
            "store it now, it is not shown again:"
        )
        self.stdout.write(raw)
