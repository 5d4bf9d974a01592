"""Defects planted in our own engines, for tests that must see them caught."""

from __future__ import annotations

import pytest

from executor import wasm


def pulley_keeps_nan_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pulley with NaN canonicalisation off: its NaN results keep their payloads, Cranelift's
    do not. Compiled modules are forgotten, so the next run compiles with the defect."""
    real = wasm._config

    def broken(target: str = wasm.TARGET):  # type: ignore[no-untyped-def]
        config = real(target)
        if target == "pulley":
            config.cranelift_nan_canonicalization = False
        return config

    monkeypatch.setattr(wasm, "_config", broken)
    monkeypatch.setattr(wasm, "_compilers", {})
