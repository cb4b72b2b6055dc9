"""Shared fixtures: users of each role, tiny random llama models, and real services.

The folders mirror the code (tests/generation/ for generation/, tests/ml/ for generation/ml/, ...);
helpers that are not tests live in tests/support/. Markers are set per folder here: everything under
tests/reliability/ is `reliability` (run by scripts/reliability.sh), everything under tests/browser/
is `browser`; slow tests elsewhere carry their own `slow` mark.

Services: tests that need PostgreSQL or Redis use the real ones on 127.0.0.1. Outside CI a missing
service skips those tests; with CI=true it fails them, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.support.tiny_models import build_lora_adapter, build_tiny_llama

# fixtures for processes (process_env, start_worker, dataset_file) and for Chromium (browser_page)
pytest_plugins = ["tests.support.processes", "tests.support.browser"]

TESTS = Path(__file__).resolve().parent
FOLDER_MARKERS = {"reliability": "reliability", "browser": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(TESTS).parts[0]
        marker = FOLDER_MARKERS.get(folder)
        if marker is not None:
            item.add_marker(getattr(pytest.mark, marker))

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    message = f"{name} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def postgres_url() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora_adapter(tiny_llama_dir, tmp_path_factory.mktemp("tiny-adapter"))


@pytest.fixture
def fresh_engine_cache():
    """A fresh ModelHost (the models a worker process holds), emptied after the test. Imported here,
    not at the top: tests of the web side must not pay for torch."""
    from generation.ml.loading import ModelHost

    host = ModelHost()
    yield host
    host.clear()


def _make_user(username: str, role: str):
    from annotations.models import User

    return User.objects.create_user(username=username, password="correct-horse-battery", role=role)


@pytest.fixture
def annotator(db):
    return _make_user("alice", "annotator")


@pytest.fixture
def other_annotator(db):
    return _make_user("bob", "annotator")


@pytest.fixture
def researcher(db):
    return _make_user("rita", "researcher")


@pytest.fixture
def admin_user(db):
    return _make_user("adam", "admin")
