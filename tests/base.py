"""Named personas (healthchecks' hc/test.py): people with roles and machines with keys."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from dashboard.keys.services import create_api_key
from dashboard.models import ApiKey, ModeratorProfile, Role
from dashboard.moderation.risks import RISK_LABELS

PASSWORD = "correct horse battery staple"
# For tests about something else than the risks: accept every one there is, with a reason.
# The keys are those of the decision API's body and of moderation.decide alike.
ACCEPT_RISKS: dict = {"accept_risks": list(RISK_LABELS), "reason": "risks accepted in a test"}


@dataclass
class Personas:
    moderator: AbstractBaseUser
    viewer: AbstractBaseUser
    admin: AbstractBaseUser
    outsider: AbstractBaseUser  # an account with no dashboard role
    node_key: str
    node: ApiKey
    other_node_key: str
    notary_key: str
    submitter_key: str
    moderator_key: str  # acts as `moderator`
    viewer_key: str  # a moderator-scoped key bound to the viewer account
    probe_key: str  # answers node-1's Bacalhau probes, and nothing else


def person(username: str, role: str | None) -> AbstractBaseUser:
    user = get_user_model().objects.create_user(username, f"{username}@example.org", PASSWORD)
    if role is not None:
        ModeratorProfile.objects.create(user=user, role=role)
    return user


def make_personas() -> Personas:
    moderator = person("mona", Role.MODERATOR)
    viewer = person("victor", Role.VIEWER)
    admin = person("ada", Role.ADMIN)
    outsider = person("oscar", None)
    node, node_key = create_api_key(scope="node", name="node-1", provider="f01234", actor="test")
    _, other_node_key = create_api_key(scope="node", name="node-2", actor="test")
    _, notary_key = create_api_key(scope="notary", name="evergreen", actor="test")
    _, submitter_key = create_api_key(scope="submitter", name="alice", actor="test")
    _, moderator_key = create_api_key(
        scope="moderator", name="mona-script", username="mona", actor="test"
    )
    _, viewer_key = create_api_key(
        scope="moderator", name="victor-script", username="victor", actor="test"
    )
    _, probe_key = create_api_key(scope="probe", name="node-1-probe", actor="test")
    return Personas(
        moderator=moderator,
        viewer=viewer,
        admin=admin,
        outsider=outsider,
        node_key=node_key,
        node=node,
        other_node_key=other_node_key,
        notary_key=notary_key,
        submitter_key=submitter_key,
        moderator_key=moderator_key,
        viewer_key=viewer_key,
        probe_key=probe_key,
    )
