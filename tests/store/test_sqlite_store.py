"""SQLiteEventStore: protocol semantics, caps, bookkeeping and error handling (one process)."""

from __future__ import annotations

import json
import logging
import pathlib
import random
import sqlite3
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

from tests.store.conftest import FakeClock


def ev(i: int, **extra: Any) -> Dict[str, Any]:
    event = {"e": "se", "eid": f"e{i}", "se_ca": "cat", "dtm": f"1700000000{i:03d}"}
    event.update(extra)
    return event


def eids(events: List[Dict[str, Any]]) -> List[str]:
    return [e["eid"] for e in events]


def raw_count(path: Any) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


# ----------------------------------------------------------------------------- protocol


def test_add_get_cleanup_size_pending(make_store: Any) -> None:
    store = make_store()
    assert store.size() == 0 and store.pending() == 0
    assert all(store.add_event(ev(i)) for i in range(5))
    assert store.size() == 5 and store.pending() == 5

    batch = store.get_events_batch()
    assert eids(batch) == ["e0", "e1", "e2", "e3", "e4"]
    assert store.size() == 5, "leased events are still stored"
    assert store.pending() == 0, "leased events are not available"
    assert store.get_events_batch() == [], "leased events are not handed out twice"

    store.cleanup(batch, False)
    assert store.size() == 0 and store.pending() == 0
    assert store.get_events_batch() == []


def test_retry_keeps_original_order(make_store: Any) -> None:
    store = make_store()
    for i in range(5):
        store.add_event(ev(i))
    first = store.get_events_batch(limit=3)
    assert eids(first) == ["e0", "e1", "e2"]
    store.add_event(ev(5))
    store.cleanup([first[1]], True)
    store.cleanup([first[0], first[2]], False)
    assert store.size() == 4
    assert eids(store.get_events_batch()) == ["e1", "e3", "e4", "e5"]


def test_limit(make_store: Any) -> None:
    store = make_store()
    for i in range(7):
        store.add_event(ev(i))
    assert store.get_events_batch(limit=0) == []
    assert eids(store.get_events_batch(limit=3)) == ["e0", "e1", "e2"]
    assert eids(store.get_events_batch(limit=3)) == ["e3", "e4", "e5"]
    assert eids(store.get_events_batch(limit=3)) == ["e6"]
    assert store.get_events_batch(limit=3) == []


def test_large_batches_exceed_sql_variable_limits(make_store: Any) -> None:
    store = make_store()
    for i in range(2500):
        store.add_event(ev(i))
    batch = store.get_events_batch()
    assert len(batch) == 2500 and store.pending() == 0
    store.cleanup(batch[::2], False)
    store.cleanup(batch[1::2], True)
    assert store.size() == 1250 and store.pending() == 1250
    assert eids(store.get_events_batch()) == [f"e{i}" for i in range(1, 2500, 2)]


def test_payload_round_trips_with_key_order_and_types(make_store: Any, db_path: Any) -> None:
    store = make_store()
    payload = {
        "zz": "last-first",
        "eid": "e0",
        "aa": "ünïcødé ✓ 日本",
        "dtm": 1700000000123,
        "float": 1.5,
        "none": None,
        "nested": {"b": [1, 2, {"c": True}], "a": "x"},
        "e": "pv",
    }
    assert store.add_event(payload)
    (got,) = store.get_events_batch()
    assert got == payload
    assert list(got) == list(payload)
    assert list(got["nested"]) == ["b", "a"]
    assert got is not payload

    conn = sqlite3.connect(str(db_path))
    stored = conn.execute("SELECT payload FROM events").fetchone()[0]
    conn.close()
    assert stored == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def test_lone_surrogates_are_stored_escaped(make_store: Any) -> None:
    store = make_store()
    payload = {"eid": "e0", "bad": "a\ud800b"}
    assert store.add_event(payload)
    assert store.get_events_batch() == [payload]


def test_stm_is_never_persisted(make_store: Any) -> None:
    store = make_store()
    with_stm = ev(0, stm="1700000000999")
    assert store.add_event(with_stm)
    assert with_stm["stm"] == "1700000000999", "the caller's dict is not modified"
    (got,) = store.get_events_batch()
    assert "stm" not in got

    got["stm"] = "1700000001000"  # the emitter stamps the leased dict in place
    store.cleanup([got], True)
    (again,) = store.get_events_batch()
    assert "stm" not in again
    assert again == ev(0)


def test_cleanup_ignores_foreign_and_repeated_dicts(
    make_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    for i in range(3):
        store.add_event(ev(i))
    batch = store.get_events_batch()
    with caplog.at_level(logging.DEBUG, logger="snowplow_tracker.event_store"):
        store.cleanup([dict(e) for e in batch], False)  # equal, but not the same objects
        store.cleanup([{"eid": "other"}], True)
    assert store.size() == 3
    assert any("not leased here" in r.getMessage() for r in caplog.records)

    store.cleanup([batch[0], batch[0]], False)
    store.cleanup([batch[0]], False)
    assert store.size() == 2
    store.cleanup(batch, True)
    assert eids(store.get_events_batch()) == ["e1", "e2"]


def test_two_stores_on_one_file_never_share_a_lease(make_store: Any) -> None:
    a, b = make_store(), make_store()
    for i in range(4):
        a.add_event(ev(i))
    got_a = a.get_events_batch(limit=2)
    got_b = b.get_events_batch()
    assert eids(got_a) == ["e0", "e1"] and eids(got_b) == ["e2", "e3"]
    assert a.get_events_batch() == [] and b.get_events_batch() == []
    b.cleanup(got_a, False)  # not b's: ignored
    assert a.size() == 4
    a.cleanup(got_a, True)
    assert eids(b.get_events_batch()) == ["e0", "e1"]


def test_lease_expiry_hands_events_to_another_store(make_store: Any, clock: FakeClock) -> None:
    a = make_store(clock=clock, lease_seconds=30)
    b = make_store(clock=clock, lease_seconds=30)
    for i in range(3):
        a.add_event(ev(i))
    leased_by_a = a.get_events_batch()
    clock.advance(29.9)
    assert b.get_events_batch() == []
    assert b.pending() == 0
    clock.advance(0.2)
    assert b.pending() == 3
    leased_by_b = b.get_events_batch()
    assert eids(leased_by_b) == ["e0", "e1", "e2"]

    # a's stale batch must neither delete nor release what b now holds
    a.cleanup(leased_by_a[:1], False)
    a.cleanup(leased_by_a[1:], True)
    assert a.size() == 3 and a.get_events_batch() == []
    b.cleanup(leased_by_b, False)
    assert a.size() == 0


def test_stale_cleanup_cannot_delete_a_new_event_that_reused_the_row_id(
    make_store: Any, clock: FakeClock
) -> None:
    a = make_store(clock=clock, lease_seconds=10)
    b = make_store(clock=clock, lease_seconds=10)
    a.add_event(ev(0))
    stale = a.get_events_batch()
    clock.advance(11)
    taken = b.get_events_batch()
    b.cleanup(taken, False)
    assert a.size() == 0
    a.add_event(ev(1))  # SQLite hands out row id 1 again
    a.cleanup(stale, False)
    assert a.size() == 1
    assert eids(a.get_events_batch()) == ["e1"]


def test_own_expired_lease_is_reissued_and_old_dict_forgotten(
    make_store: Any, clock: FakeClock
) -> None:
    store = make_store(clock=clock, lease_seconds=5)
    store.add_event(ev(0))
    first = store.get_events_batch()
    clock.advance(6)
    second = store.get_events_batch()
    assert eids(second) == ["e0"] and second[0] is not first[0]
    store.cleanup(first, False)  # forgotten: ignored
    assert store.size() == 1
    store.cleanup(second, False)
    assert store.size() == 0
    assert len(store._leases) == 0 and len(store._by_row) == 0


# ----------------------------------------------------------------------------- caps


def test_count_cap_drop_newest(make_store: Any) -> None:
    dropped: List[Tuple[List[Dict[str, Any]], str]] = []
    store = make_store(max_events=3, on_drop=lambda evs, why: dropped.append((evs, why)))
    assert [store.add_event(ev(i)) for i in range(5)] == [True, True, True, False, False]
    assert store.size() == 3
    assert store.dropped == 2 and store.drop_counts == {"buffer_full": 2}
    assert [(eids(evs), why) for evs, why in dropped] == [
        (["e3"], "buffer_full"),
        (["e4"], "buffer_full"),
    ]

    batch = store.get_events_batch(limit=1)
    assert not store.add_event(ev(5)), "leased events count against the cap"
    store.cleanup(batch, False)
    assert store.add_event(ev(6))
    assert eids(store.get_events_batch()) == ["e1", "e2", "e6"]


def test_count_cap_drop_oldest(make_store: Any) -> None:
    dropped: List[Tuple[List[Dict[str, Any]], str]] = []
    store = make_store(
        max_events=3,
        overflow="drop_oldest",
        on_drop=lambda evs, why: dropped.append((evs, why)),
    )
    assert all(store.add_event(ev(i)) for i in range(5))
    assert store.size() == 3
    assert store.drop_counts == {"buffer_full": 2}
    assert [(eids(evs), why) for evs, why in dropped] == [
        (["e0"], "buffer_full"),
        (["e1"], "buffer_full"),
    ]
    assert eids(store.get_events_batch()) == ["e2", "e3", "e4"]


def test_drop_oldest_never_evicts_live_leases(make_store: Any) -> None:
    store = make_store(max_events=3, overflow="drop_oldest")
    for i in range(3):
        store.add_event(ev(i))
    in_flight = store.get_events_batch(limit=1)  # e0
    assert store.add_event(ev(3))  # evicts e1, the oldest unleased event
    store.cleanup(in_flight, True)
    assert eids(store.get_events_batch()) == ["e0", "e2", "e3"]
    assert not store.add_event(ev(4)), "everything is leased: the new event is refused"
    assert store.drop_counts == {"buffer_full": 2}


def test_cap_shared_by_stores_with_the_same_file(make_store: Any) -> None:
    a, b = make_store(max_events=4), make_store(max_events=4)
    results = [(a if i % 2 else b).add_event(ev(i)) for i in range(6)]
    assert results == [True] * 4 + [False] * 2
    assert a.size() == b.size() == 4


def test_lowering_the_cap_on_reopen(make_store: Any) -> None:
    big = make_store(max_events=10)
    for i in range(6):
        big.add_event(ev(i))
    big.close()
    small = make_store(max_events=4, overflow="drop_oldest")
    assert small.add_event(ev(6))
    assert small.size() == 4 and small.drop_counts == {"buffer_full": 3}
    assert eids(small.get_events_batch()) == ["e3", "e4", "e5", "e6"]


def test_age_purge(make_store: Any, clock: FakeClock) -> None:
    dropped: List[Tuple[List[Dict[str, Any]], str]] = []
    store = make_store(
        clock=clock,
        max_age_seconds=100,
        purge_interval=0,
        on_drop=lambda evs, why: dropped.append((evs, why)),
    )
    store.add_event(ev(0))
    clock.advance(50)
    store.add_event(ev(1))
    clock.advance(60)  # e0 is 110 s old, e1 60 s
    assert eids(store.get_events_batch()) == ["e1"]
    assert store.size() == 1
    assert store.drop_counts == {"expired": 1}
    assert [(eids(evs), why) for evs, why in dropped] == [(["e0"], "expired")]


def test_age_purge_spares_live_leases_and_respects_interval(
    make_store: Any, clock: FakeClock
) -> None:
    holder = make_store(clock=clock, lease_seconds=60)
    other = make_store(clock=clock, max_age_seconds=10, purge_interval=30, lease_seconds=60)
    holder.add_event(ev(0))
    in_flight = holder.get_events_batch()
    clock.advance(20)
    other.add_event(ev(1))
    assert eids(other.get_events_batch()) == ["e1"]  # purges nothing: e0 is leased
    assert other.dropped == 0
    holder.cleanup(in_flight, True)
    clock.advance(5)  # purge interval (30 s) not over yet
    assert eids(other.get_events_batch()) == ["e0"]
    assert other.dropped == 0
    other.cleanup([], True)


def test_age_limit_disabled(make_store: Any, clock: FakeClock) -> None:
    store = make_store(clock=clock, max_age_seconds=None, purge_interval=0)
    store.add_event(ev(0))
    clock.advance(10 * 365 * 24 * 3600)
    assert eids(store.get_events_batch()) == ["e0"]


def test_on_drop_exceptions_are_logged_not_raised(
    make_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(events: List[Dict[str, Any]], reason: str) -> None:
        raise RuntimeError("callback failed")

    store = make_store(max_events=1, on_drop=boom)
    assert store.add_event(ev(0))
    with caplog.at_level(logging.WARNING, logger="snowplow_tracker.event_store"):
        assert store.add_event(ev(1)) is False
    assert store.dropped == 1
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_on_drop_runs_outside_the_lock(make_store: Any) -> None:
    seen: List[int] = []
    store = make_store(max_events=1)

    def reenter(events: List[Dict[str, Any]], reason: str) -> None:
        seen.append(store.size())  # would deadlock if called under the store lock

    store.on_drop = reenter
    store.add_event(ev(0))
    store.add_event(ev(1))
    assert seen == [1]


# ----------------------------------------------------------------------------- robustness


def test_corrupt_rows_are_deleted_and_counted(make_store: Any, db_path: Any) -> None:
    dropped: List[Tuple[List[Dict[str, Any]], str]] = []
    store = make_store(on_drop=lambda evs, why: dropped.append((evs, why)))
    store.add_event(ev(0))
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    conn.execute("INSERT INTO events (created, payload) VALUES (?, ?)", (time.time(), "{not json"))
    conn.execute("INSERT INTO events (created, payload) VALUES (?, ?)", (time.time(), "[1, 2]"))
    conn.execute("INSERT INTO events (created, payload) VALUES (?, ?)", (time.time(), "17"))
    conn.close()
    store.add_event(ev(4))
    assert store.size() == 5

    assert eids(store.get_events_batch()) == ["e0", "e4"]
    assert store.drop_counts == {"corrupt": 3}
    assert store.size() == 2
    assert dropped == [
        ([{"_corrupt_rowid": 2}, {"_corrupt_rowid": 3}, {"_corrupt_rowid": 4}], "corrupt")
    ]


def test_unserializable_event_is_dropped_not_raised(make_store: Any) -> None:
    dropped: List[str] = []
    store = make_store(on_drop=lambda evs, why: dropped.append(why))
    assert store.add_event({"eid": "x", "obj": object()}) is False
    assert store.drop_counts == {"unserializable": 1} and dropped == ["unserializable"]
    assert store.size() == 0


def test_size_counts_own_changes_at_once_and_reads_others_within_a_millisecond(
    make_store: Any, db_path: Any
) -> None:
    store = make_store()
    assert store.size() == 0
    for i in range(5):
        assert store.add_event(ev(i))
        assert store.size() == i + 1
    batch = store.get_events_batch(limit=2)
    store.cleanup(batch, False)
    assert store.size() == 3, "deletions show at once"
    raw = sqlite3.connect(str(db_path))  # another writer: not a store object of this process
    with raw:
        raw.execute("INSERT INTO events (created, payload) VALUES (?, ?)", (time.time(), "{}"))
    raw.close()
    time.sleep(0.002)
    assert store.size() == 4
    # A tracking call (add_event, then the emitter's size()) runs the INSERT and nothing
    # else, unless more than a millisecond passed since the count was read (a loaded
    # machine can pause us that long: a few tries).
    for attempt in range(20):
        assert store.size() == 4 + attempt
        statements: List[str] = []
        store._conn.set_trace_callback(statements.append)
        store.add_event(ev(10 + attempt))
        assert store.size() == 5 + attempt
        store._conn.set_trace_callback(None)
        if all(sql.startswith("INSERT") for sql in statements):
            break
    else:
        raise AssertionError(f"size() read the file after every add_event: {statements}")


def test_size_is_exact_at_once_with_two_stores_on_one_file(make_store: Any) -> None:
    a = make_store()
    assert a.size() == 0
    b = make_store()
    for i in range(3):
        b.add_event(ev(i))
        assert a.size() == i + 1
    a.cleanup(a.get_events_batch(), False)
    assert b.size() == 0


def test_circular_event_is_dropped_as_unserializable(make_store: Any) -> None:
    store = make_store()
    loop: Dict[str, Any] = {"eid": "x"}
    loop["self"] = loop
    assert store.add_event(loop) is False
    assert store.drop_counts == {"unserializable": 1}
    assert store.add_event(ev(1)) and store.size() == 1


def test_encoder_matches_json_dumps(store_module: Any) -> None:
    samples: List[Any] = [
        {},
        {"e": "pv", "url": 'https://x/\u00e9?a=1&b="q"', "tab": "\t", "ctl": "\x01\x7f"},
        {"n": 1, "f": 0.1, "big": 10**30, "neg": -2.5e-9, "t": True, "z": None},
        {"nested": {"l": [1, [2, {"k": "\u2603\U0001f600"}]], "empty": []}},
        {"inf": float("inf"), "nan": float("nan")},
    ]
    for sample in samples:
        expected = json.dumps(sample, separators=(",", ":"), ensure_ascii=False)
        assert store_module._ENCODE(sample) == expected
    with pytest.raises(TypeError):
        store_module._ENCODE({"o": object()})


def test_cap_holds_under_concurrent_adders(make_store: Any) -> None:
    stores = [make_store(max_events=50) for _ in range(4)]
    results: List[bool] = []

    def add(store: Any, base: int) -> None:
        for i in range(40):
            results.append(store.add_event(ev(base + i)))

    threads = [threading.Thread(target=add, args=(s, 1000 * n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 50 and stores[0].size() == 50
    assert sum(s.drop_counts.get("buffer_full", 0) for s in stores) == 110


def test_add_event_gives_up_quickly_when_the_database_is_locked(
    make_store: Any, db_path: Any
) -> None:
    dropped: List[str] = []
    store = make_store(busy_timeout=0.2, on_drop=lambda evs, why: dropped.append(why))
    store.add_event(ev(0))
    blocker = sqlite3.connect(str(db_path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert store.add_event(ev(1)) is False
        assert time.monotonic() - started < 2.0
        assert store.drop_counts == {"error": 1} and dropped == ["error"]
        started = time.monotonic()
        assert store.get_events_batch() == []  # logged, not raised
        assert time.monotonic() - started < 5.0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.add_event(ev(2))
    assert eids(store.get_events_batch()) == ["e0", "e2"]


def test_cleanup_while_locked_keeps_events_for_later(
    make_store: Any, db_path: Any, clock: FakeClock
) -> None:
    store = make_store(busy_timeout=0.1, clock=clock, lease_seconds=5)
    store.add_event(ev(0))
    batch = store.get_events_batch()
    blocker = sqlite3.connect(str(db_path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store.cleanup(batch, False)  # cannot delete: logged, not raised
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.size() == 1
    clock.advance(6)
    assert eids(store.get_events_batch()) == ["e0"], "redelivered after the lease, not lost"


def test_size_bookkeeping_matches_count_under_random_operations(
    make_store: Any, db_path: Any, clock: FakeClock
) -> None:
    rng = random.Random(1234)
    a = make_store(
        clock=clock,
        max_events=60,
        overflow="drop_oldest",
        lease_seconds=20,
        max_age_seconds=400,
        purge_interval=0,
    )
    b = make_store(
        clock=clock, max_events=60, lease_seconds=20, max_age_seconds=400, purge_interval=0
    )
    held: Dict[int, List[Dict[str, Any]]] = {0: [], 1: []}
    n = 0
    for _ in range(1500):
        who = rng.randint(0, 1)
        store = (a, b)[who]
        op = rng.random()
        if op < 0.5:
            store.add_event(ev(n))
            n += 1
        elif op < 0.7:
            held[who].extend(store.get_events_batch(limit=rng.randint(1, 15)))
        elif op < 0.9 and held[who]:
            k = rng.randint(1, len(held[who]))
            part, held[who] = held[who][:k], held[who][k:]
            store.cleanup(part, rng.random() < 0.3)
        else:
            clock.advance(rng.uniform(0, 15))
        assert store.size() == raw_count(db_path)
        assert 0 <= store.pending() <= store.size() <= 60
    assert a.dropped + b.dropped > 0


def test_count_is_healed_after_rows_are_deleted_behind_its_back(
    make_store: Any, db_path: Any
) -> None:
    store = make_store()
    for i in range(10):
        store.add_event(ev(i))
    store.close()
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    conn.execute("DELETE FROM events WHERE id IN (2, 5, 10)")
    conn.close()
    reopened = make_store()
    assert reopened.size() == 7


def test_schema_wal_and_version(make_store: Any, db_path: Any, store_module: Any) -> None:
    make_store()
    conn = sqlite3.connect(str(db_path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION == 1
    conn.close()


def test_newer_schema_is_refused(store_module: Any, db_path: Any) -> None:
    conn = sqlite3.connect(str(db_path))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ValueError, match="schema version 99"):
        store_module.SQLiteEventStore(db_path)


@pytest.mark.parametrize("path", [":memory:", ""])
def test_in_memory_database_is_rejected(store_module: Any, path: str) -> None:
    with pytest.raises(ValueError, match="InMemoryEventStore"):
        store_module.SQLiteEventStore(path)


def test_str_and_pathlike_paths(make_store: Any, tmp_path: pathlib.Path) -> None:
    as_str = make_store(str(tmp_path / "a.db"))
    as_path = make_store(tmp_path / "a.db")
    as_str.add_event(ev(0))
    assert as_path.size() == 1 and as_path.path == str(tmp_path / "a.db")


def test_options_are_readable(make_store: Any) -> None:
    store = make_store(max_events=7, max_age_seconds=None, lease_seconds=3, overflow="drop_oldest")
    assert (store.max_events, store.max_age_seconds, store.lease_seconds, store.overflow) == (
        7,
        None,
        3.0,
        "drop_oldest",
    )
    assert store.supports_batch_limit is True


@pytest.mark.parametrize(
    "options",
    [
        {"max_events": 0},
        {"max_age_seconds": 0},
        {"lease_seconds": 0},
        {"overflow": "block"},
        {"busy_timeout": -1},
        {"synchronous": "SOMETIMES"},
    ],
)
def test_invalid_options(store_module: Any, db_path: Any, options: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        store_module.SQLiteEventStore(db_path, **options)


def test_close_releases_leases_and_store_reopens(make_store: Any) -> None:
    a, b = make_store(), make_store()
    for i in range(2):
        a.add_event(ev(i))
    a.get_events_batch()
    a.close()
    assert eids(b.get_events_batch()) == ["e0", "e1"]
    assert a.add_event(ev(2))  # reopened lazily
    assert a.size() == 3
    with make_store() as c:
        assert c.size() == 3


def test_payloads_are_not_logged_above_debug(
    make_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-value"
    store = make_store(max_events=1)
    with caplog.at_level(logging.DEBUG):
        store.add_event(ev(0, secret=secret))
        store.add_event(ev(1, secret=secret))
        store.add_event({"secret": secret, "obj": object()})
    assert store.dropped == 2
    assert caplog.records, "drops are logged"
    for record in caplog.records:
        if record.levelno > logging.DEBUG:
            assert secret not in record.getMessage()


def test_uses_the_given_logger(
    store_module: Any, db_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("my.app.events")
    store = store_module.SQLiteEventStore(db_path, max_events=1, logger=logger)
    with caplog.at_level(logging.WARNING, logger="my.app.events"):
        store.add_event(ev(0))
        store.add_event(ev(1))
    store.close()
    assert [r.name for r in caplog.records] == ["my.app.events"]


# ----------------------------------------------------------------------------- big batches


def test_many_expired_events_are_purged_in_one_call(make_store: Any, clock: FakeClock) -> None:
    reports: List[Tuple[int, str]] = []
    store = make_store(
        clock=clock,
        max_age_seconds=100,
        purge_interval=0,
        on_drop=lambda evs, why: reports.append((len(evs), why)),
    )
    for i in range(2500):
        store.add_event(ev(i))
    clock.advance(200)
    for i in range(2500, 2510):
        store.add_event(ev(i))
    clock.advance(50)
    assert eids(store.get_events_batch()) == [f"e{i}" for i in range(2500, 2510)]
    assert store.drop_counts == {"expired": 2500}
    assert reports == [(1000, "expired"), (1000, "expired"), (500, "expired")]
    assert store.size() == 10


def test_one_call_only_leases_events_that_existed_when_it_started(make_store: Any) -> None:
    leaser, adder = make_store(), make_store()
    for i in range(1500):
        leaser.add_event(ev(i))
    original = leaser._lease_locked

    calls: List[int] = []

    def lease_then_add(*args: Any) -> Any:
        result = original(*args)
        if not calls:
            adder.add_event(ev(9999))  # lands between the two transactions of this call
        calls.append(len(result[0]))
        return result

    leaser._lease_locked = lease_then_add
    assert eids(leaser.get_events_batch()) == [f"e{i}" for i in range(1500)]
    assert calls == [1000, 500]
    del leaser._lease_locked
    assert eids(leaser.get_events_batch()) == ["e9999"]


def _drain_backlog_while_writing(
    make_store: Any, path: Any
) -> Tuple[int, Dict[str, int], int, float]:
    """Drain a 40000-event backlog while a writer keeps adding.

    Returns (events drained, the writer's drop counts, its adds, its slowest add in s).
    """
    make_store(path).close()
    conn = sqlite3.connect(str(path))
    with conn:  # one transaction
        conn.executemany(
            "INSERT INTO events (created, payload) VALUES (?, ?)",
            ((time.time(), json.dumps(ev(i))) for i in range(40000)),
        )
    conn.close()
    big = make_store(path)
    assert big.size() == 40000
    # The writer adds tens of thousands of events during the drain: with the default cap
    # (100,000, the backlog included) it would refuse some as "buffer_full", which says
    # nothing about starvation. So its cap is out of reach.
    writer = make_store(path, busy_timeout=0.25, max_events=10_000_000)
    done = threading.Event()
    added = [0]
    slowest = [0.0]

    def keep_adding() -> None:
        while not done.is_set():
            started = time.monotonic()
            writer.add_event(ev(100000 + added[0]))
            slowest[0] = max(slowest[0], time.monotonic() - started)
            added[0] += 1

    thread = threading.Thread(target=keep_adding)
    thread.start()
    try:
        batch = big.get_events_batch()
        big.cleanup(batch, False)
    finally:
        done.set()
        thread.join(timeout=30)
    return len(batch), writer.drop_counts, added[0], slowest[0]


def test_large_batch_operations_do_not_starve_writers(
    make_store: Any, tmp_path: pathlib.Path
) -> None:
    # One transaction over 40000 rows would hold the write lock for ~0.4 s here; the batch
    # operations use 1000-row transactions that hold it for a few milliseconds (rows looked
    # up by id, decoding after the commit), with pauses in between, so a writer with a
    # 0.25 s busy timeout never gives up.
    drained, drops, added, slowest = _drain_backlog_while_writing(
        make_store, tmp_path / "starve.db"
    )
    assert drained >= 40000
    assert added > 0
    assert drops == {}, f"the writer gave up (slowest add {slowest:.3f} s): {drops}"


def test_batch_statements_look_rows_up_by_id(make_store: Any) -> None:
    # Through the lease index, "id IN (...) AND lease_owner = ?" walked every row this store
    # had leased, per statement: ~17 ms of write lock per 1000 rows of a 40000-event batch.
    store = make_store()
    for i in range(30):
        store.add_event(ev(i))
    statements: List[str] = []
    store._conn.set_trace_callback(statements.append)
    first = store.get_events_batch(limit=20)
    store.cleanup(first[:10], False)
    store.cleanup(first[10:], True)
    store._conn.set_trace_callback(None)
    checked = 0
    for sql in statements:
        if sql.startswith(("UPDATE events", "DELETE FROM events")) and "lease_owner IN" not in sql:
            plan = " ".join(row[-1] for row in store._conn.execute("EXPLAIN QUERY PLAN " + sql))
            assert "events_lease" not in plan, (sql, plan)
            checked += 1
    assert checked >= 3


def test_checkpoints_run_in_batch_operations(make_store: Any) -> None:
    store = make_store()
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 4000
    for i in range(50):
        store.add_event(ev(i))
    calls: List[str] = []
    store._conn.set_trace_callback(calls.append)
    store._next_checkpoint = 0.0  # due now
    store.add_event(ev(50))
    assert not any("wal_checkpoint" in sql for sql in calls), "never on the add_event path"
    store.cleanup(store.get_events_batch(), False)
    assert any("wal_checkpoint" in sql for sql in calls)
    store._conn.set_trace_callback(None)
