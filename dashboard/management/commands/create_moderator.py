"""`manage.py create_moderator USERNAME --role viewer|moderator|admin`

The password comes from MODERATOR_PASSWORD, or is asked for (twice) on a terminal.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.accounts.services import create_moderator
from dashboard.errors import DomainError
from dashboard.models import Role


class Command(BaseCommand):
    help = "Create a moderator account (or change its role and password)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("MODERATOR_PASSWORD")
        if not password:
            if not sys.stdin.isatty():
                raise CommandError("set MODERATOR_PASSWORD, or run this on a terminal to type it")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        try:
            create_moderator(
                username=options["username"], role=options["role"], password=password, actor="cli"
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{options['username']} is a {options['role']}")
