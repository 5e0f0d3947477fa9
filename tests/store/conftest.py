"""Fixtures for the SQLite event store tests."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, List

import pytest

from tests.store._load import load_store_module


class FakeClock:
    """A settable wall clock, so tests never sleep for leases or ages."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def store_module() -> ModuleType:
    return load_store_module()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def make_store(store_module: ModuleType, db_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_store(**options)`` opens a store on ``db_path``; all are closed afterwards."""
    stores: List[Any] = []

    def make(path: Any = None, **options: Any) -> Any:
        store = store_module.SQLiteEventStore(db_path if path is None else path, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
