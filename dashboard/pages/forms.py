"""Forms of the moderator pages. Rules live in the services; forms only read the input."""

from __future__ import annotations

from typing import Any

from django import forms

from dashboard.models import MAX_REASON, ApiKey, Award, Job
from dashboard.moderation.services import DECISION_RULE

DATE = forms.DateInput(attrs={"type": "date"})

# The jobs list's views of the jobs (dashboard/pages/selectors.py: STATE_FILTERS says what
# each one means). "" is the default: awaiting a decision, or every state for a search.
JOB_LIST_STATES = [
    ("", "default: awaiting; any for a search"),
    ("awaiting", "awaiting a decision"),
    ("awaiting_second_approval", "awaiting a second approval"),
    ("verified", "verified"),
    ("rejected", "rejected"),
    ("revoked", "revoked"),
    ("failed", "failed"),
    ("all", "all"),
]


class QueueFilterForm(forms.Form):
    q = forms.CharField(
        label="Job id or CID",
        required=False,
        max_length=200,
        help_text="An input CID or a result CID, in any form; searches every state unless one "
        "is chosen.",
    )
    state = forms.ChoiceField(label="State", required=False, choices=JOB_LIST_STATES)
    blessed = forms.ChoiceField(
        label="Inputs",
        required=False,
        choices=[("", "any"), ("yes", "all blessed"), ("no", "not all blessed")],
    )
    engine = forms.ChoiceField(
        label="Engine", required=False, choices=[("", "any"), *Job.Engine.choices]
    )
    node = forms.ChoiceField(label="Compute node", required=False, choices=[("", "any")])
    since = forms.DateField(label="Finished from", required=False, widget=DATE)
    until = forms.DateField(label="Finished until", required=False, widget=DATE)
    annotation = forms.CharField(label="Annotation", required=False, max_length=100)

    def __init__(self, *args: Any, nodes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["node"].choices = [("", "any"), *nodes]  # type: ignore[attr-defined]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label="Decision",
        choices=[("verify", "Verify"), ("reject", "Reject")],
        widget=forms.RadioSelect,
        error_messages={"required": DECISION_RULE, "invalid_choice": DECISION_RULE},
    )
    datacap = forms.CharField(
        label="DataCap",
        required=False,
        max_length=40,
        help_text="With units: 32 GiB, 1.5 TiB, 500 GB, or a number of bytes.",
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to reject, and to verify accepting risks; recorded in the audit "
        "log either way.",
    )

    def __init__(self, *args: Any, risks: list[tuple[str, str]] = (), **kwargs: Any) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        # One checkbox per open risk (moderation.risks), named accept_<risk>.
        for name, label in risks:
            self.fields[f"accept_{name}"] = forms.BooleanField(
                label=f"I accept: {label}", required=False
            )

    def accepted_risks(self) -> list[str]:
        return [
            name.removeprefix("accept_")
            for name, value in self.cleaned_data.items()
            if name.startswith("accept_") and value
        ]

    def risk_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("accept_")]


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label="Reason for revoking",
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ConfirmForm(forms.Form):
    reason = forms.CharField(
        label="Why the verification stands",
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label="Actor", required=False, max_length=200)
    action = forms.ChoiceField(label="Action", required=False, choices=[("", "any")])
    job = forms.CharField(label="Job", required=False, max_length=110)
    since = forms.DateField(label="From", required=False, widget=DATE)
    until = forms.DateField(label="Until", required=False, widget=DATE)

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "any"), *((a, a) for a in actions)]  # type: ignore[attr-defined]


class AwardFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="On chain", required=False, choices=[("", "any"), *Award.ChainState.choices]
    )
    provider = forms.RegexField(
        label="Provider",
        required=False,
        regex=r"^f0\d{1,20}$",
        max_length=22,
        help_text="f0… awarded, or claiming",
        error_messages={"invalid": "A provider is an ID address like f01234."},
    )
    notary = forms.ChoiceField(label="Notary", required=False, choices=[("", "any")])

    def __init__(self, *args: Any, notaries: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["notary"].choices = [("", "any"), *((n, n) for n in notaries)]  # type: ignore[attr-defined]


class RevokeKeyForm(forms.Form):
    """Revoking a key is at once and for good: the admin ticks a box to say so (checked by
    the server too, so a form posted without it revokes nothing)."""

    confirm = forms.BooleanField(
        label="Revoke this key now: whatever uses it is refused from its next request",
        error_messages={"required": "Tick the box to confirm the revocation."},
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    scope = forms.ChoiceField(label="Scope", choices=ApiKey.Scope.choices)
    provider = forms.CharField(
        label="Storage provider",
        required=False,
        max_length=32,
        help_text="Compute node keys only: the f0… address that holds its results.",
    )
    username = forms.CharField(
        label="Moderator account",
        required=False,
        max_length=150,
        help_text="Moderator keys only: the account the key acts as.",
    )
    verifier = forms.BooleanField(
        label="Verifier",
        required=False,
        help_text="Compute node keys only: the node re-executes other nodes' jobs "
        "(python -m executor verify).",
    )


# Which form field a service's error field belongs to.
SERVICE_FIELDS = {"datacap_bytes": "datacap", "user": "username"}


def first_error(form: forms.Form) -> str:
    """The message of a form's first error, for the page's alert."""
    return str(next(iter(form.errors.values()))[0])


def add_service_errors(form: forms.Form, fields: dict[str, Any] | None, message: str) -> None:
    """Show a DomainError's field errors next to the fields (the message says what is wrong)."""
    for name in fields or {}:
        target = SERVICE_FIELDS.get(name, name)
        if target in form.fields:
            form.add_error(target, message)
