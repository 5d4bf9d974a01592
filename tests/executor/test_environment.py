"""The executor's environment variables: defaults, values, and bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor import environment
from executor.backend import open_storage
from executor.environment import BadSetting
from executor.run import JobFailed, max_input_bytes
from executor.storage import StorageError

VARIABLES = (
    "FILPLUS_API_URL",
    "FILPLUS_API_KEY",
    "DATA_DIR",
    "IPFS_API_URL",
    "IPFS_FIND_TIMEOUT_S",
    "DOCKER_HOST",
    "EXECUTOR_DOCKER_PULL",
    "EXECUTOR_MAX_INPUT_BYTES",
)


def defaults() -> tuple[object, ...]:
    return (
        environment.api_url(),
        environment.api_key(),
        environment.data_dir(),
        environment.ipfs_api_url(),
        environment.ipfs_find_timeout_s(),
        environment.docker_host(),
        environment.docker_pull(),
        environment.max_input_bytes(),
    )


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_unset_or_empty_variables_take_their_defaults(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    for name in VARIABLES:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert defaults() == (None, None, Path("data"), None, 2.0, None, False, 4 << 30)


def test_variables_are_read_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "FILPLUS_API_URL": "http://dashboard.example:8000",
        "FILPLUS_API_KEY": "fp_node_abc",
        "DATA_DIR": "/var/lib/filplus",
        "IPFS_API_URL": "http://127.0.0.1:5001",
        "IPFS_FIND_TIMEOUT_S": "0.5",
        "DOCKER_HOST": "unix:///run/docker.sock",
        "EXECUTOR_DOCKER_PULL": "1",
        "EXECUTOR_MAX_INPUT_BYTES": "1024",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert defaults() == (
        "http://dashboard.example:8000",
        "fp_node_abc",
        Path("/var/lib/filplus"),
        "http://127.0.0.1:5001",
        0.5,
        "unix:///run/docker.sock",
        True,
        1024,
    )


@pytest.mark.parametrize(
    ("value", "pull"),
    [("1", True), ("true", True), (" YES ", True), ("0", False), ("no", False), ("on", False)],
)
def test_docker_pulls_are_on_for_1_true_or_yes(
    monkeypatch: pytest.MonkeyPatch, value: str, pull: bool
) -> None:
    monkeypatch.setenv("EXECUTOR_DOCKER_PULL", value)
    assert environment.docker_pull() is pull


@pytest.mark.parametrize("value", ["0", "1e-3", "30"])
def test_a_find_timeout_may_be_any_number_of_seconds_from_0(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("IPFS_FIND_TIMEOUT_S", value)
    assert environment.ipfs_find_timeout_s() == float(value)


@pytest.mark.parametrize("value", ["soon", "nan", "inf", "-inf", "1e400", "-1"])
def test_a_bad_find_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("IPFS_FIND_TIMEOUT_S", value)
    message = f"IPFS_FIND_TIMEOUT_S must be a number of seconds, got {value!r}"
    with pytest.raises(BadSetting) as failure:
        environment.ipfs_find_timeout_s()
    assert str(failure.value) == message
    # The storage backend reports it as a storage error, as it always has.
    monkeypatch.setenv("IPFS_API_URL", "http://127.0.0.1:5001")
    with pytest.raises(StorageError) as failure:
        open_storage()
    assert str(failure.value) == message


@pytest.mark.parametrize("value", ["0", "-1", " 12", "+5", "1.5", "4G", "\u00b2", "9" * 5000])
def test_a_bad_input_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EXECUTOR_MAX_INPUT_BYTES", value)
    message = f"EXECUTOR_MAX_INPUT_BYTES must be a positive number of bytes, got {value!r}"
    with pytest.raises(BadSetting) as failure:
        environment.max_input_bytes()
    assert str(failure.value) == message
    # A job fails with it, as it always has.
    with pytest.raises(JobFailed) as failure:
        max_input_bytes()
    assert str(failure.value) == message


def test_retrieval_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from executor.retrieval import RetrievalSettings

    for name in ("IPNI_URL", "IPFS_GATEWAYS", "EXECUTOR_RETRIEVAL_TIMEOUT_S", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert RetrievalSettings.from_environment() == RetrievalSettings(
        ipni_url="https://cid.contact", gateways=(), timeout_s=600.0, piece_dir=Path("data/pieces")
    )
    monkeypatch.setenv("IPNI_URL", "")  # set but empty: routing off, unlike other variables
    monkeypatch.setenv("IPFS_GATEWAYS", " https://gw.example/ ,,http://127.0.0.1:8080")
    monkeypatch.setenv("EXECUTOR_RETRIEVAL_TIMEOUT_S", "2.5")
    monkeypatch.setenv("DATA_DIR", "/var/lib/filplus")
    assert RetrievalSettings.from_environment() == RetrievalSettings(
        ipni_url=None,
        gateways=("https://gw.example", "http://127.0.0.1:8080"),
        timeout_s=2.5,
        piece_dir=Path("/var/lib/filplus/pieces"),
    )
    monkeypatch.setenv("IPNI_URL", "https://ipni.example/")
    assert environment.ipni_url() == "https://ipni.example"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IPNI_URL", "cid.contact"),
        ("IPFS_GATEWAYS", "https://ok.example,file:///etc"),
        ("EXECUTOR_RETRIEVAL_TIMEOUT_S", "0"),
        ("EXECUTOR_RETRIEVAL_TIMEOUT_S", "inf"),
        ("EXECUTOR_RETRIEVAL_TIMEOUT_S", "soon"),
    ],
)
def test_bad_retrieval_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from executor.retrieval import RetrievalSettings

    monkeypatch.setenv(name, value)
    with pytest.raises(BadSetting, match=name):
        RetrievalSettings.from_environment()
