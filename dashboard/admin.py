"""Admin pages: API keys (created with the key shown once, revoked, never edited), roles."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from dashboard.addresses import PROVIDER_ADDRESS
from dashboard.bacalhau.clients import bind_client, client_id_of
from dashboard.bacalhau.scan import map_node
from dashboard.errors import DomainError
from dashboard.keys.services import create_api_key, revoke_api_key
from dashboard.models import (
    ApiKey,
    AuditEvent,
    BacalhauClient,
    BacalhauJob,
    BacalhauNode,
    BacalhauOrchestrator,
    ModeratorProfile,
)


class ApiKeyForm(forms.ModelForm):
    username = forms.CharField(required=False, help_text="moderator keys: the account it acts as")

    class Meta:
        model = ApiKey
        fields = ["name", "scope", "provider"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "scope",
        "prefix",
        "provider",
        "user",
        "verifier",
        "created_at",
        "last_used_at",
        "probe_count",
        "probe_last_at",
        "revoked_at",
    ]
    list_filter = ["scope", "revoked_at"]
    search_fields = ["name", "prefix", "provider"]
    actions = ["revoke"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [f.name for f in ApiKey._meta.fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return
        try:
            key, raw = create_api_key(
                scope=obj.scope,
                name=obj.name,
                provider=obj.provider,
                username=form.cleaned_data.get("username") or None,
                actor=f"user:{request.user.get_username()}",
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        obj.pk = key.pk
        messages.warning(request, f"API key for {key.name} (shown once, copy it now): {raw}")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            revoke_api_key(prefix=key.prefix, actor=f"user:{request.user.get_username()}")
        self.message_user(request, f"revoked {queryset.count()} key(s)")


@admin.register(ModeratorProfile)
class ModeratorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "role"]
    list_filter = ["role"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the code writes (the audit log, scanner checkpoints): shown, never edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]


class BacalhauNodeForm(forms.ModelForm):
    class Meta:
        model = BacalhauNode
        fields = ["orchestrator", "node_id", "provider"]

    def clean_provider(self) -> str:
        provider = str(self.cleaned_data.get("provider") or "")
        if provider and not PROVIDER_ADDRESS.fullmatch(provider):
            raise forms.ValidationError("a storage provider id address like f01234, or empty")
        return provider


@admin.register(BacalhauNode)
class BacalhauNodeAdmin(admin.ModelAdmin):
    """Which storage provider a Bacalhau compute node's results are stored with: a node of
    one orchestrator (another orchestrator's node of the same id is another node)."""

    form = BacalhauNodeForm
    list_display = ["node_id", "orchestrator", "provider", "updated_at"]
    list_filter = ["orchestrator"]
    search_fields = ["node_id", "provider"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["orchestrator", "node_id"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: BacalhauNode, form: Any, change: bool) -> None:
        try:
            changed = map_node(
                orchestrator=obj.orchestrator,
                node_id=obj.node_id,
                provider=obj.provider,
                actor=f"user:{request.user.get_username()}",
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        obj.pk = BacalhauNode.objects.get(orchestrator=obj.orchestrator, node_id=obj.node_id).pk
        messages.info(
            request, f"{changed} imported result(s) now name {obj.provider or 'no provider'}"
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BacalhauOrchestrator)
class BacalhauOrchestratorAdmin(ReadOnlyAdmin):
    """The orchestrators' scanner checkpoints (BACALHAU_ORCHESTRATORS): read only."""

    list_display = [
        "url",
        "jobs_read",
        "executions_imported",
        "last_pass_finished_at",
        "last_error_at",
        "last_error",
    ]


@admin.register(BacalhauJob)
class BacalhauJobAdmin(ReadOnlyAdmin):
    """Jobs seen on the orchestrators: those still open, and why one could not be read."""

    list_display = [
        "job_id",
        "orchestrator",
        "state",
        "finished",
        "read_at",
        "attempts",
        "retry_at",
        "error",
    ]
    list_filter = ["orchestrator", "finished"]
    search_fields = ["job_id"]


class BacalhauClientForm(forms.ModelForm):
    identity = forms.CharField(
        label="Client id or public key",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="the 64-hex client id bacalhau-sdk logs, or its base64 public key",
    )

    class Meta:
        model = BacalhauClient
        fields = ["key"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].queryset = ApiKey.objects.filter(  # type: ignore[attr-defined]
            scope=ApiKey.Scope.SUBMITTER, revoked_at__isnull=True
        )

    def clean_identity(self) -> str:
        try:
            return client_id_of(str(self.cleaned_data.get("identity") or ""))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(BacalhauClient)
class BacalhauClientAdmin(admin.ModelAdmin):
    """Bacalhau legacy clients (the Airflow provider's RSA key) and the submitter key each
    submits as."""

    form = BacalhauClientForm
    list_display = ["client_id", "key", "created_at"]
    search_fields = ["client_id"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: BacalhauClient, form: Any, change: bool
    ) -> None:
        try:
            client = bind_client(
                identity=form.cleaned_data["identity"],
                key_prefix=form.cleaned_data["key"].prefix,
                actor=f"user:{request.user.get_username()}",
            )
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        obj.pk = client.pk
