from django.apps import AppConfig


class ChainScannerConfig(AppConfig):
    name = "chain_scanner"
    verbose_name = "Chain scanner"
