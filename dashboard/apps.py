from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "FIL+ dashboard"

    def ready(self) -> None:
        # Registers the OpenAPI descriptions of our authentication classes.
        from dashboard.api import schema  # noqa: F401
        from dashboard.content.services import sweep_uploads

        # Upload bodies of a process killed mid-upload stay behind; each start clears them.
        sweep_uploads()
