"""A durable, multi-process event store on the standard library's :mod:`sqlite3`.

The public name is re-exported as ``snowplow_tracker.event_store.SQLiteEventStore``.
This module deliberately imports nothing from the rest of the package, so it can be
loaded (and tested) on its own.

Design in brief
---------------
* One table ``events(id, created, payload, lease_owner, lease_until)``. Row ids give the
  order; a new row always gets ``max(id) + 1``, so retried events keep their place.
* ``get_events_batch`` *leases* rows to this store instance inside ``BEGIN IMMEDIATE``:
  it writes its owner token and an expiry time into the rows. Other processes skip rows
  whose lease is live. ``cleanup`` deletes (delivered) or releases (retry) rows, but only
  rows still leased by this token, so a stale batch can never delete or release a row
  that another process took over, nor a later event that reused a row id.
* Owners are recorded in ``owners(token, pid, host, start, seen)``. A reader on the same
  host (same boot id and PID namespace) releases the leases of owners whose process is
  gone (``os.kill(pid, 0)``, zombie state, or a different process start time, which also
  catches PID reuse). Everywhere else, time-based lease expiry is the fallback.
* The count is O(1) and inserts write nothing but the new row: a new row id is always
  ``max(id) + 1``, so ``count = max(id) - meta.base``, where ``meta.base`` only changes
  when rows are deleted, which happens only in this module, inside write transactions.
  The capacity check is a per-connection TEMP trigger (``AFTER INSERT ... WHEN NEW.id -
  base > cap ... RAISE(ABORT)``: one lookup of the one-row ``meta`` table), so the insert
  stays a single atomic statement across processes and a full store costs an exception.
* ``add_event`` is one cached INSERT on a reused cursor in autocommit mode: committed when
  it returns, with no count query. ``size()`` (which emitters call after every tracking
  call) answers from the last count read plus this store's own inserts while that reading
  is under a millisecond old and no other store object in this process uses the file;
  otherwise it reads the count. So a tracking call touches the file once.
* Batch operations work in transactions of at most 1000 rows with short pauses in between,
  and run the WAL checkpoints (the only fsyncs under ``synchronous=NORMAL``), so
  ``add_event`` is one INSERT and commit (no fsync) and is never locked out for long. A
  transaction holds the write lock for a few milliseconds: rows are looked up by id (never
  through the lease index, see ``_OURS``), each lease transaction of a call starts after
  the rows the previous one took, and payloads are decoded after the commit.
* Fork safety: ``os.register_at_fork`` hooks (installed when the first store is created)
  close the connection before a fork (the parent reopens it lazily); every method also
  compares ``os.getpid()`` and, in a child created without the hooks, abandons the
  inherited connection and opens its own.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ["SQLiteEventStore"]

#: Version of the on-disk schema, stored in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

_LOGGER_NAME = "snowplow_tracker.event_store"
_CHUNK = (
    500  # ids per IN (...) list; stays far below SQLITE_MAX_VARIABLE_NUMBER (999 on old builds)
)
_OVERFLOW_POLICIES = ("drop_newest", "drop_oldest")
_SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_OWNER_TTL = 24 * 3600.0  # owner rows not refreshed for this long are pruned (always safe)
_DROP_LOG_INTERVAL = 10.0  # seconds between two WARNING lines about dropped events
_BATCH_ATTEMPTS = 3  # attempts for batch operations that hit "database is locked"
# Rows per write transaction in batch operations: keeps every lock hold short (tens of ms),
# so add_event in other threads and processes is not starved or timed out.
_TXN_ROWS = 1000
# WAL checkpoints (which fsync) are run by batch operations, at most once a second; the
# connection's own automatic checkpoint, which would run inside add_event, only kicks in
# when the WAL grows past this many pages (~16 MB) because nobody consumes.
_AUTOCHECKPOINT_PAGES = 4000
_CHECKPOINT_INTERVAL = 1.0
# size() reads the count from the file when its last reading is older than this (seconds);
# in between it counts this store's own inserts. So other processes' changes show in size()
# within a millisecond, and a tracking call (add_event, then the emitter's size()) needs no
# second trip to the file in a busy process.
_COUNT_FRESH = 0.001

PayloadDict = Dict[str, Any]
DropCallback = Callable[[List[PayloadDict], str], None]
Clock = Callable[[], float]

# Same output as json.dumps(payload, separators=(",", ":"), ensure_ascii=False).
_ENCODE_PY = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# Fallback for strings SQLite cannot store as UTF-8 (lone surrogates): \\u escapes round-trip.
_ENCODE_ASCII = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _make_fast_encoder() -> Callable[[Any], str]:
    """``_ENCODE_PY`` without its per-call set-up: ``JSONEncoder.encode`` builds a new C
    encoder object (and a dict for circular-reference checks) for every call; here one C
    encoder is built once. Circular references then end in RecursionError, which
    ``add_event`` reports as unserializable. Falls back to ``_ENCODE_PY`` when the C
    accelerator is missing or does not give the same output."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODE_PY
    try:
        # The arguments JSONEncoder.iterencode passes: markers (None: no circular-reference
        # checks), default, string encoder, indent, key and item separators, sort_keys,
        # skipkeys, allow_nan.
        args = (None, _not_serializable, json.encoder.encode_basestring, None, ":", ",")
        encoder = make(*args, False, False, True)

        def encode(payload: Any) -> str:
            return "".join(encoder(payload, 0))

        sample = {"e": "se", "\u00e9": ["x\n", 1, 2.5, None, True, {"k": "\u2603"}]}
        if encode(sample) == _ENCODE_PY(sample):
            return encode
    except Exception:  # a different private signature: use the public path
        pass
    return _ENCODE_PY


_ENCODE = _make_fast_encoder()

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY,"
    " created REAL NOT NULL,"
    " payload TEXT NOT NULL,"
    " lease_owner INTEGER,"
    " lease_until REAL)",
    # Partial index: inserts (lease_owner NULL) do not touch it.
    "CREATE INDEX IF NOT EXISTS events_lease ON events (lease_owner, lease_until)"
    " WHERE lease_owner IS NOT NULL",
    # count(events) == max(id) - base; see _set_base
    "CREATE TABLE IF NOT EXISTS meta (k INTEGER PRIMARY KEY CHECK (k = 0), base INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta (k, base) VALUES (0, 0)",
    "CREATE TABLE IF NOT EXISTS owners ("
    " token INTEGER PRIMARY KEY,"
    " pid INTEGER NOT NULL,"
    " host TEXT NOT NULL,"
    " start TEXT NOT NULL,"
    " seen REAL NOT NULL)",
)

_COUNT = "SELECT coalesce((SELECT max(id) FROM events) - (SELECT base FROM meta WHERE k = 0), 0)"
# Per connection, with this store's cap: aborts the INSERT (nothing is written, the caller
# gets IntegrityError(_FULL)) when the row just added is one too many. A new row's id is
# max(id) + 1, so the count after the insert is NEW.id - base: one lookup of the one-row
# meta table, and no work at all in the common case beyond starting the trigger program.
_FULL = "snowplow event store full"
_CAP_TRIGGER = (
    "CREATE TEMP TRIGGER IF NOT EXISTS snowplow_events_cap_after AFTER INSERT ON main.events"
    " WHEN NEW.id - (SELECT base FROM main.meta WHERE k = 0) > {cap}"
    f" BEGIN SELECT RAISE(ABORT, '{_FULL}'); END"
)
_INSERT = "INSERT INTO events (created, payload) VALUES (?, ?)"
_SELECT_AVAILABLE = (
    "SELECT id, payload FROM events WHERE lease_owner IS NULL OR lease_until <= ?"
    " ORDER BY id LIMIT ?"
)
# Rows (after, high]: each transaction of one get_events_batch call starts where the last
# one stopped, instead of stepping again over the rows it has just leased.
_SELECT_AVAILABLE_RANGE = (
    "SELECT id, payload FROM events WHERE id > ? AND id <= ?"
    " AND (lease_owner IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?"
)
_LEASE_RANGE = (
    "UPDATE events SET lease_owner = ?, lease_until = ? WHERE id > ? AND id <= ?"
    " AND (lease_owner IS NULL OR lease_until <= ?)"
)
# "Still leased by us" filter for rows looked up by id. The unary + keeps SQLite from using
# the lease index for it (which would walk every row this store has leased, per statement)
# instead of looking the ids up.
_OURS = " AND +lease_owner = ?"
_COUNT_LIVE_LEASED = "SELECT count(*) FROM events WHERE lease_owner IS NOT NULL AND lease_until > ?"


class _Lease:
    """One event handed out by ``get_events_batch`` and not yet cleaned up."""

    __slots__ = ("event", "rowid", "until")

    def __init__(self, rowid: int, event: PayloadDict, until: float) -> None:
        self.rowid = rowid
        self.event = event  # keeps the dict alive so its id() is not reused while leased
        self.until = until


# --------------------------------------------------------------------------- process identity

_host_key_cache: Optional[str] = None


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _host_key() -> str:
    """Identify "same kernel, same PID namespace": where a PID names one process."""
    global _host_key_cache
    if _host_key_cache is None:
        try:
            pid_ns = os.readlink("/proc/self/ns/pid")
        except (OSError, AttributeError):
            pid_ns = ""
        boot_id = _read_text("/proc/sys/kernel/random/boot_id")
        _host_key_cache = "|".join((socket.gethostname(), boot_id, pid_ns))
    return _host_key_cache


def _proc_stat(pid: int) -> Optional[Tuple[str, str]]:
    """(state, start time in clock ticks since boot) from /proc, or None if unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    end = data.rfind(b")")  # the command name may itself contain spaces and parentheses
    fields = data[end + 2 :].split() if end >= 0 else []
    if len(fields) < 20:
        return None
    return fields[0].decode("ascii", "replace"), fields[19].decode("ascii", "replace")


def _process_start(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else ""


def _process_is_dead(pid: int, start: str) -> bool:
    """True only when we are sure that process ``pid`` (started at ``start``) is gone.

    Must only be asked about PIDs from the same host key. Any doubt answers False, so
    the caller falls back to time-based lease expiry.
    """
    if os.name != "posix" or pid <= 0:  # os.kill(pid, 0) terminates processes on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, belongs to another user
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return True
    return bool(start) and bool(started) and started != start


def _without_stm(payload: PayloadDict) -> PayloadDict:
    return {k: v for k, v in payload.items() if k != "stm"}


def _new_token() -> int:
    return int.from_bytes(os.urandom(8), "big") >> 2  # positive, fits SQLite's INTEGER


# --------------------------------------------------------------------------- fork handling

_STORES: weakref.WeakSet[SQLiteEventStore] = weakref.WeakSet()
# pid -> the lock that serialises resets in that process. Keyed by pid so that a child forked
# without Python's hooks never waits on a lock it inherited (setdefault is atomic).
_REINIT_LOCKS: Dict[int, threading.Lock] = {}
_FORK_SNAPSHOT: List[SQLiteEventStore] = []
# Connections inherited across a fork that bypassed os.register_at_fork: never used again
# and never closed explicitly (closing could disturb the parent's locks and WAL).
_ABANDONED: List[Any] = []


def _before_fork() -> None:
    _FORK_SNAPSHOT[:] = list(_STORES)
    for store in _FORK_SNAPSHOT:
        store._prepare_fork()


def _after_fork_in_parent() -> None:
    for store in _FORK_SNAPSHOT:
        store._finish_fork_in_parent()
    del _FORK_SNAPSHOT[:]


def _after_fork_in_child() -> None:
    pid = os.getpid()
    _REINIT_LOCKS.clear()
    for store in _FORK_SNAPSHOT:
        store._reset_in_child(pid)
    del _FORK_SNAPSHOT[:]


# realpath of a database file -> the live stores on it in this process. size() only counts
# in memory for a store that is alone on its file here (see _COUNT_FRESH).
_PEERS: Dict[str, weakref.WeakSet[SQLiteEventStore]] = {}
_PEERS_LOCKS: Dict[int, threading.Lock] = {}  # by pid, like _REINIT_LOCKS

_HOOKS_INSTALLED: List[bool] = []
_HOOKS_LOCK = threading.Lock()


def _install_fork_hooks() -> None:
    """Install the fork hooks once, when the first store is created (never at import)."""
    if _HOOKS_INSTALLED or not hasattr(os, "register_at_fork"):
        return
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        _HOOKS_INSTALLED.append(True)
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


# --------------------------------------------------------------------------- helpers


def _chunks(seq: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _pause(busy: float) -> None:
    """Between two transactions of one batch operation: stay idle as long as the last one
    held the lock (at most 50 ms), so writers waiting in SQLite's busy handler, which
    polls at growing intervals, find the database free instead of being starved."""
    time.sleep(min(max(busy, 0.001), 0.05))


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _Rollback(Exception):
    """Raised inside a _WriteTransaction to abandon it."""


class _WriteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


# --------------------------------------------------------------------------- the store


class SQLiteEventStore:
    """Durable event store in a SQLite file, shareable by threads and processes.

    Implements the 1.1.0 ``EventStore`` protocol (``add_event``, ``get_events_batch``,
    ``cleanup``, ``size``) so it can be passed as ``event_store=`` to any emitter.

    Guarantees:

    * An event for which ``add_event`` returned True is in the database file (WAL
      journal, ``synchronous=NORMAL``): it survives a crash or ``kill -9`` of the process.
      ``synchronous=NORMAL`` does not protect the last commits against an operating
      system crash or power loss; pass ``synchronous="FULL"`` for that (slower).
    * At-least-once delivery: events leave the file only through
      ``cleanup(batch, need_retry=False)`` or the documented caps.
    * Each event is leased to one store instance (process) at a time: events returned by
      ``get_events_batch`` are not handed out again until ``cleanup`` releases them or
      the lease expires. Leases of a dead process on the same host are taken over at once.
    * ``add_event`` never raises. If the database stays locked for ``busy_timeout`` it
      gives up; failures are logged, counted in :attr:`dropped` and reported to
      ``on_drop``. Batch operations use short transactions (at most 1000 rows each), so
      they do not hold the lock for long.

    Args:
        path: File name (``str`` or ``os.PathLike``). The directory must exist. In-memory
            databases (``":memory:"``, ``""``) are rejected: use ``InMemoryEventStore``.
        max_events: Cap on stored events (available and leased) across all processes.
        max_age_seconds: Events older than this are deleted (reason ``"expired"``) when
            not leased. None disables the age limit.
        lease_seconds: How long events returned by ``get_events_batch`` stay reserved for
            this process. Should exceed the emitter's longest send attempt.
        overflow: What to do when ``max_events`` is reached: ``"drop_newest"`` refuses the
            new event (1.1.0 behaviour); ``"drop_oldest"`` evicts the oldest events that
            are not under a live lease, or refuses the new one if
            every event is leased.
        logger: Logger to use; defaults to ``logging.getLogger("snowplow_tracker.event_store")``.
        on_drop: ``on_drop(events, reason)`` called, outside the store's lock and in the
            calling thread, for events refused or removed without being delivered.
            Reasons: ``"buffer_full"`` (``max_events`` reached: the new event refused or
            the oldest evicted, as with ``InMemoryEventStore``), ``"expired"``,
            ``"corrupt"`` (undecodable rows, reported as ``{"_corrupt_rowid": id}``),
            ``"unserializable"`` and ``"error"`` (database error). Exceptions it raises
            are logged and swallowed.
        clock: Wall-clock source (seconds since the epoch) for creation and lease times;
            tests inject a fake clock. All processes sharing a file must agree on it.
        busy_timeout: Seconds a call waits for another connection's write lock before
            giving up (``add_event`` then drops the event with reason ``"error"``).
        synchronous: SQLite ``PRAGMA synchronous`` level (``"NORMAL"`` by default).
        detect_dead_owners: Take over the leases of dead processes on the same host
            immediately (default True). When False, only lease expiry frees them.
        purge_interval: Minimum seconds between two age purges (they scan the table)
            by ``get_events_batch``. Until a purge runs, expired events may still be sent.

    Raises:
        ValueError: for invalid options, an in-memory path, or a database written by a
            newer schema version.
        sqlite3.Error: if the file cannot be opened or created (for example a missing
            directory). After construction, no method raises for database errors.
    """

    #: Accepts ``get_events_batch(limit)``; emitters check this marker.
    supports_batch_limit = True

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        max_events: int = 100_000,
        max_age_seconds: Optional[float] = 30 * 24 * 3600.0,
        lease_seconds: float = 60.0,
        overflow: str = "drop_newest",
        logger: Optional[logging.Logger] = None,
        on_drop: Optional[DropCallback] = None,
        clock: Clock = time.time,
        busy_timeout: float = 1.0,
        synchronous: str = "NORMAL",
        detect_dead_owners: bool = True,
        purge_interval: float = 60.0,
    ) -> None:
        filename = os.fspath(path)
        if filename in ("", ":memory:") or filename.startswith("file::memory:"):
            raise ValueError(
                "SQLiteEventStore needs a file path; for a non-durable in-memory store "
                "use InMemoryEventStore"
            )
        if int(max_events) < 1:
            raise ValueError("max_events must be at least 1")
        if max_age_seconds is not None and not max_age_seconds > 0:
            raise ValueError("max_age_seconds must be positive or None")
        if not (lease_seconds > 0 and math.isfinite(lease_seconds)):
            raise ValueError("lease_seconds must be a positive number")
        if overflow not in _OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {', '.join(_OVERFLOW_POLICIES)}")
        if not busy_timeout >= 0:
            raise ValueError("busy_timeout must be >= 0")
        if synchronous.upper() not in _SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS_MODES)}")
        if not purge_interval >= 0:
            raise ValueError("purge_interval must be >= 0")

        self._path = filename
        self._max_events = int(max_events)
        self._max_age = None if max_age_seconds is None else float(max_age_seconds)
        self._lease_seconds = float(lease_seconds)
        self._overflow = overflow
        self.logger = logger if logger is not None else logging.getLogger(_LOGGER_NAME)
        self.on_drop = on_drop
        self._clock = clock
        self._busy_timeout = float(busy_timeout)
        self._synchronous = synchronous.upper()
        self._detect_dead = bool(detect_dead_owners)
        self._purge_interval = float(purge_interval)

        self._lock = threading.Lock()
        self._fork_locked = False
        self._pid = os.getpid()
        self._token = _new_token()
        self._start = _process_start(self._pid)
        self._conn: Optional[sqlite3.Connection] = None
        self._insert: Optional[Callable[..., Any]] = None  # execute() of a cursor on _conn
        self._healed = False
        self._leases: Dict[int, _Lease] = {}  # id(event dict) -> lease
        self._by_row: Dict[int, int] = {}  # row id -> id(event dict)
        self._next_purge = -math.inf
        self._next_owner_prune = -math.inf
        self._next_checkpoint = time.monotonic() + _CHECKPOINT_INTERVAL
        self._next_sweep = -math.inf
        self._count = 0  # last count read from the file, plus this store's inserts since
        self._count_until = -math.inf  # monotonic time until which _count may be returned
        self._alone = True  # no other store on this file in this process (see _PEERS)
        self._drops: Dict[str, int] = {}
        self._drop_log_at = -math.inf
        self._drop_log_suppressed = 0

        self._join_peers()  # before our first write (the count check when opening)
        with self._lock:
            self._connection()  # surface a bad path or schema now, not on the first event
        _install_fork_hooks()
        _STORES.add(self)

    # ------------------------------------------------------------------ public API

    @property
    def path(self) -> str:
        """The database file name."""
        return self._path

    @property
    def max_events(self) -> int:
        """The cap on stored events (emitters read it for their ``"block"`` policy)."""
        return self._max_events

    @property
    def max_age_seconds(self) -> Optional[float]:
        """Age after which unleased events are purged (None: never)."""
        return self._max_age

    @property
    def lease_seconds(self) -> float:
        """How long handed-out events stay reserved for this store."""
        return self._lease_seconds

    @property
    def overflow(self) -> str:
        """``"drop_newest"`` or ``"drop_oldest"``."""
        return self._overflow

    @property
    def dropped(self) -> int:
        """Events refused or removed without delivery by this store instance (this process)."""
        with self._lock:
            return sum(self._drops.values())

    @property
    def drop_counts(self) -> Dict[str, int]:
        """:attr:`dropped` broken down by reason (a copy)."""
        with self._lock:
            return dict(self._drops)

    def add_event(self, payload: PayloadDict) -> bool:
        """Store one event durably. Returns False if it was dropped (store full or error).

        A ``stm`` key (send timestamp, set by emitters at send time) is not stored.
        """
        try:
            text = _ENCODE(payload if "stm" not in payload else _without_stm(payload))
        except (TypeError, ValueError, RecursionError) as exc:
            self._drop_now([payload], "unserializable", f"event is not JSON-serialisable: {exc}")
            return False
        if self._pid != os.getpid():
            self._check_pid()
        try:
            with self._lock:
                # Fast path: one INSERT, its own implicit transaction, committed when it
                # returns. The cap trigger aborts it (IntegrityError) when the store is full.
                (self._insert or self._insert_method())(_INSERT, (self._clock(), text))
                self._count += 1
            return True
        except sqlite3.IntegrityError as exc:
            if _FULL in str(exc):
                return self._add_when_full(text, payload)
            return self._add_failed(payload, exc)
        except Exception as exc:  # never raise to the tracking call
            return self._add_failed(payload, exc)

    def _add_when_full(self, text: str, payload: PayloadDict) -> bool:
        drops: List[Tuple[List[PayloadDict], str]] = []
        try:
            with self._lock:
                ok = self._add_slow_locked(self._connection(), text, payload, drops)
        except Exception as exc:
            return self._add_failed(payload, exc)
        self._notify(drops)
        return ok

    def _add_failed(self, payload: PayloadDict, exc: Exception) -> bool:
        """The insert raised: retry lone surrogates \\u-escaped, else drop ("error")."""
        drops: List[Tuple[List[PayloadDict], str]] = []
        if isinstance(exc, UnicodeEncodeError):
            # Lone surrogates cannot be stored as UTF-8: store them \\u-escaped instead.
            try:
                ascii_text = _ENCODE_ASCII(_without_stm(payload))
                with self._lock:
                    conn = self._connection()
                    ok = self._add_slow_locked(conn, ascii_text, payload, drops, insert=True)
                self._notify(drops)
                return ok
            except Exception as exc2:
                exc = exc2
        self.logger.warning("SQLiteEventStore: could not store event: %s", exc)
        with self._lock:
            self._count_drop("error", 1, "could not store event")
        drops.append(([payload], "error"))
        self._notify(drops)
        return False

    def get_events_batch(self, limit: Optional[int] = None) -> List[PayloadDict]:
        """Lease and return up to ``limit`` available events (all of them if None), oldest first.

        Also takes over leases of dead processes and purges expired events. Large batches
        are leased in several short transactions, so other threads and processes are never
        locked out for long. Never raises for database errors: it logs them and returns
        what it could lease.
        """
        if limit is not None and limit <= 0:
            return []
        self._check_pid()
        self._purge_expired()
        events: List[PayloadDict] = []
        high: Optional[int] = None  # only rows that existed when the call started
        after = 0  # rows up to this id were seen by an earlier transaction of this call
        busy = 0.0
        while True:
            want = _TXN_ROWS if limit is None else min(_TXN_ROWS, limit - len(events))
            drops: List[Tuple[List[PayloadDict], str]] = []
            scanned = 0
            if high is not None:
                _pause(busy)
            started = time.monotonic()
            with self._lock:
                for attempt in range(_BATCH_ATTEMPTS):
                    try:
                        got, scanned, after, high = self._lease_locked(want, after, high, drops)
                        events.extend(got)
                        break
                    except Exception as exc:
                        drops = []
                        retry = attempt + 1 < _BATCH_ATTEMPTS and isinstance(exc, sqlite3.Error)
                        if retry and _is_busy(exc):
                            continue
                        self.logger.error("SQLiteEventStore: get_events_batch failed: %s", exc)
                        break
            busy = time.monotonic() - started
            self._notify(drops)
            if scanned < want or (limit is not None and len(events) >= limit):
                self._maybe_checkpoint()
                return events

    def cleanup(self, batch: List[PayloadDict], need_retry: bool) -> None:
        """Finish events returned by :meth:`get_events_batch` (the same dict objects).

        ``need_retry`` False deletes them (delivered or given up); True releases their
        lease so they are handed out again, in their original order. Dicts this store did
        not hand out (or whose lease it lost) are ignored.
        """
        self._check_pid()
        rowids: List[int] = []
        with self._lock:
            for event in batch:
                lease = self._leases.get(id(event))
                if lease is None or lease.event is not event:
                    self.logger.debug("SQLiteEventStore: cleanup of an event not leased here")
                    continue
                del self._leases[id(event)]
                self._by_row.pop(lease.rowid, None)
                rowids.append(lease.rowid)
        rowids.sort()
        what = "release" if need_retry else "delete"
        busy = -1.0
        for chunk in _chunks(rowids, _TXN_ROWS):  # one short transaction per chunk
            if busy >= 0:
                _pause(busy)
            started = time.monotonic()
            with self._lock:
                for attempt in range(_BATCH_ATTEMPTS):
                    try:
                        if need_retry:
                            self._release_locked(chunk)
                        else:
                            self._delete_leased_locked(chunk)
                        break
                    except Exception as exc:
                        retry = attempt + 1 < _BATCH_ATTEMPTS and isinstance(exc, sqlite3.Error)
                        if retry and _is_busy(exc):
                            continue
                        # The rows stay leased: handed out again when the lease expires.
                        self.logger.error(
                            "SQLiteEventStore: could not %s %d events: %s", what, len(chunk), exc
                        )
                        break
            busy = time.monotonic() - started
        self._maybe_checkpoint()

    def size(self) -> int:
        """Events stored and not deleted (available and leased), across all processes. O(1).

        This store's own changes show at once, and so do those of other store objects on
        the same path in this process. Other processes' changes show within a millisecond:
        the count is read from the file when the last reading is older than that, and in
        between this store adds its own inserts to it.
        """
        if self._alone and time.monotonic() < self._count_until:
            # The last reading plus this store's inserts since (updated under the lock; two
            # plain attribute reads here). Neither the file nor the lock is touched, so no
            # PID check is needed either: the tracking call's second getpid() is saved.
            return self._count
        if self._pid != os.getpid():
            self._check_pid()
        with self._lock:
            fresh_until = time.monotonic() + _COUNT_FRESH
            try:
                count = int(self._connection().execute(_COUNT).fetchone()[0])
            except Exception as exc:
                self.logger.warning("SQLiteEventStore: size() failed: %s", exc)
                return self._count
            self._count, self._count_until = count, fresh_until
            return count

    def pending(self) -> int:
        """Events available to ``get_events_batch`` now: not leased, or lease expired or dead."""
        self._check_pid()
        with self._lock:
            try:
                conn = self._connection()
                total = int(conn.execute(_COUNT).fetchone()[0])
                now = self._clock()
                dead = self._dead_owners(conn)
                leased = int(conn.execute(_COUNT_LIVE_LEASED, (now,)).fetchone()[0])
                for chunk in _chunks(dead):
                    leased -= int(
                        conn.execute(
                            f"{_COUNT_LIVE_LEASED} AND lease_owner IN ({_marks(len(chunk))})",
                            (now, *chunk),
                        ).fetchone()[0]
                    )
                return max(total - leased, 0)
            except Exception as exc:
                self.logger.warning("SQLiteEventStore: pending() failed: %s", exc)
                return 0

    def close(self) -> None:
        """Release this store's leases and close the connection.

        The store stays usable: a later call reopens the file. Leased events released
        here may be handed out again, so a delivery still in flight can be duplicated.
        """
        self._check_pid()
        with self._lock:
            conn, self._conn, self._insert = self._conn, None, None
            self._count_until = -math.inf
            self._leases.clear()
            self._by_row.clear()
            if conn is None:
                return
            try:
                with _WriteTransaction(conn):
                    conn.execute(
                        "UPDATE events SET lease_owner = NULL, lease_until = NULL"
                        " WHERE lease_owner = ?",
                        (self._token,),
                    )
                    conn.execute("DELETE FROM owners WHERE token = ?", (self._token,))
            except Exception as exc:
                self.logger.warning("SQLiteEventStore: could not release leases: %s", exc)
            try:
                conn.close()
            except sqlite3.Error as exc:
                self.logger.warning("SQLiteEventStore: close failed: %s", exc)

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SQLiteEventStore({self._path!r}, max_events={self._max_events}, "
            f"overflow={self._overflow!r})"
        )

    # ------------------------------------------------------------------ connection

    def _join_peers(self) -> None:
        """Register on this file; with another store on it here, neither counts in memory
        (each reads the count from the file in every size() call)."""
        with _PEERS_LOCKS.setdefault(os.getpid(), threading.Lock()):
            peers = _PEERS.setdefault(os.path.realpath(self._path), weakref.WeakSet())
            for peer in peers:
                peer._alone = False
            self._alone = not peers
            peers.add(self)

    def _connection(self) -> sqlite3.Connection:
        """The open connection of this process (lock held)."""
        conn = self._conn
        if conn is None:
            conn = self._open()
            self._conn = conn
            self._insert = conn.cursor().execute
        return conn

    def _insert_method(self) -> Callable[..., Any]:
        """``execute`` of the cursor add_event reuses (lock held; opens the connection)."""
        self._connection()
        assert self._insert is not None
        return self._insert

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                self.logger.warning(
                    "SQLiteEventStore: journal mode is %s, not WAL, for %s", mode, self._path
                )
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA temp_store=MEMORY")  # the TEMP cap trigger needs no temp file
            conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            self._ensure_schema(conn)
            conn.execute(_CAP_TRIGGER.format(cap=self._max_events))
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version != SCHEMA_VERSION:
            with _WriteTransaction(conn):
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise ValueError(
                        f"{self._path} has event store schema version {version}; this "
                        f"version of snowplow_tracker supports up to {SCHEMA_VERSION}"
                    )
                if version < SCHEMA_VERSION:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if not self._healed:
            self._heal_count(conn)
            self._healed = True

    def _heal_count(self, conn: sqlite3.Connection) -> None:
        """Recompute ``meta.base`` exactly (O(n), once per store), in case rows were
        deleted behind our back."""
        self._count_until = -math.inf
        try:
            with _WriteTransaction(conn):
                exact = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
                self._set_base(conn, exact)
        except sqlite3.Error as exc:
            self.logger.debug("SQLiteEventStore: count check skipped: %s", exc)

    @staticmethod
    def _set_base(conn: sqlite3.Connection, count: int) -> None:
        """Store ``base`` so that ``max(id) - base`` is ``count`` (in a write transaction)."""
        high, low = conn.execute(
            "SELECT (SELECT max(id) FROM events), (SELECT min(id) FROM events)"
        ).fetchone()
        if high is None:
            base = 0  # empty: the next row gets id 1
        else:
            base = int(high) - count
            if count < 1 or base < int(low) - 1:  # impossible: bookkeeping is off, recount
                base = int(high) - int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        conn.execute("UPDATE meta SET base = ? WHERE k = 0", (base,))

    def _delete_rows(
        self,
        conn: sqlite3.Connection,
        rowids: Sequence[int],
        where: str = "",
        params: Tuple[Any, ...] = (),
    ) -> int:
        """Delete rows by id inside a write transaction, keeping ``meta.base`` right."""
        if not rowids:
            return 0
        self._count_until = -math.inf  # size() reads the count again
        before = int(conn.execute(_COUNT).fetchone()[0])
        deleted = 0
        for chunk in _chunks(rowids):
            cur = conn.execute(
                f"DELETE FROM events WHERE id IN ({_marks(len(chunk))}){where}",
                (*chunk, *params),
            )
            deleted += max(cur.rowcount, 0)
        if deleted:
            self._set_base(conn, before - deleted)
        for rowid in rowids:
            key = self._by_row.pop(rowid, None)
            if key is not None:
                self._leases.pop(key, None)
        return deleted

    # ------------------------------------------------------------------ add

    def _add_slow_locked(
        self,
        conn: sqlite3.Connection,
        text: str,
        payload: PayloadDict,
        drops: List[Tuple[List[PayloadDict], str]],
        insert: bool = False,
    ) -> bool:
        """The store looked full (or ``insert``: try the fast insert first)."""
        self._count_until = -math.inf  # size() reads the count again
        now = self._clock()
        if insert:
            try:
                conn.execute(_INSERT, (now, text))
                return True
            except sqlite3.IntegrityError as exc:
                if _FULL not in str(exc):
                    raise
        if self._overflow == "drop_oldest" and self._evict_and_insert(conn, now, text, drops):
            return True
        self._count_drop(
            "buffer_full", 1, f"event store is full (max_events={self._max_events}): new event"
        )
        drops.append(([payload], "buffer_full"))
        return False

    def _evict_and_insert(
        self,
        conn: sqlite3.Connection,
        now: float,
        text: str,
        drops: List[Tuple[List[PayloadDict], str]],
    ) -> bool:
        evicted: List[Tuple[int, Any]] = []
        try:
            with _WriteTransaction(conn):
                count = int(conn.execute(_COUNT).fetchone()[0])
                need = count - self._max_events + 1
                if need > 0:
                    evicted = conn.execute(_SELECT_AVAILABLE, (now, need)).fetchall()
                    if len(evicted) < need:
                        raise _Rollback  # the rest is leased: refuse the new event instead
                    self._delete_rows(conn, [row[0] for row in evicted])
                try:
                    conn.execute(_INSERT, (now, text))
                except sqlite3.IntegrityError as exc:
                    if _FULL in str(exc):
                        raise _Rollback from None  # still full (a concurrent insert)
                    raise
        except _Rollback:
            return False
        if evicted:
            self._count_drop("buffer_full", len(evicted), "event store is full: oldest events")
            if self.on_drop is not None:
                drops.append((self._decode_for_report(evicted), "buffer_full"))
        return True

    # ------------------------------------------------------------------ lease

    def _lease_locked(
        self,
        want: int,
        after: int,
        high: Optional[int],
        drops: List[Tuple[List[PayloadDict], str]],
    ) -> Tuple[List[PayloadDict], int, int, int]:
        """Lease up to ``want`` available rows with ``after < id <= high`` in one transaction.

        The first call of a batch (``high`` None) also does the housekeeping and fixes
        ``high``. The write transaction only selects and marks the rows; decoding them
        happens after its commit. Returns (events, rows scanned, last row id, high).
        """
        conn = self._connection()
        now = self._clock()
        first = high is None
        dead = self._dead_owners(conn) if first else []
        until = now + self._lease_seconds
        prune_owners = first and now >= self._next_owner_prune
        with _WriteTransaction(conn):
            if high is None:
                high = int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])
            for chunk in _chunks(dead):
                marks = _marks(len(chunk))
                conn.execute(
                    "UPDATE events SET lease_owner = NULL, lease_until = NULL"
                    f" WHERE lease_owner IN ({marks})",
                    tuple(chunk),
                )
                conn.execute(f"DELETE FROM owners WHERE token IN ({marks})", tuple(chunk))
            if prune_owners:
                conn.execute(
                    "DELETE FROM owners WHERE token != ? AND seen < ?",
                    (self._token, now - _OWNER_TTL),
                )
            if first:
                conn.execute(
                    "INSERT OR REPLACE INTO owners (token, pid, host, start, seen)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (self._token, self._pid, _host_key(), self._start, now),
                )
            rows = conn.execute(_SELECT_AVAILABLE_RANGE, (after, high, now, want)).fetchall()
            if rows:
                # Exactly the rows selected: nothing else can match in (after, last].
                conn.execute(_LEASE_RANGE, (self._token, until, after, rows[-1][0], now))
        if dead:
            self.logger.info(
                "SQLiteEventStore: took over the leases of %d dead process(es)", len(dead)
            )
        if prune_owners:
            self._next_owner_prune = now + 3600.0
        events: List[PayloadDict] = []
        good: List[int] = []
        corrupt: List[int] = []
        for rowid, text in rows:
            try:
                event = json.loads(text)
            except (TypeError, ValueError):
                event = None
            if isinstance(event, dict):
                good.append(rowid)
                events.append(event)
            else:
                corrupt.append(rowid)
        if corrupt:
            self._delete_corrupt(conn, corrupt, drops)
        self._remember_leases(good, events, until, now)
        return events, len(rows), (rows[-1][0] if rows else after), high

    def _delete_corrupt(
        self,
        conn: sqlite3.Connection,
        rowids: List[int],
        drops: List[Tuple[List[PayloadDict], str]],
    ) -> None:
        """Delete rows that do not decode (leased by this store a moment ago)."""
        try:
            with _WriteTransaction(conn):
                self._delete_rows(conn, rowids, _OURS, (self._token,))
        except sqlite3.Error as exc:  # still leased: found again when the lease ends
            self.logger.warning("SQLiteEventStore: could not delete corrupt rows: %s", exc)
            return
        self.logger.error(
            "SQLiteEventStore: deleted %d corrupt rows from %s", len(rowids), self._path
        )
        self._count_drop("corrupt", len(rowids), None)
        drops.append(([{"_corrupt_rowid": rowid} for rowid in rowids], "corrupt"))

    def _maybe_checkpoint(self) -> None:
        """Copy the WAL back into the database now and then, off the add_event path."""
        now = time.monotonic()
        if now < self._next_checkpoint:
            return
        with self._lock:
            self._next_checkpoint = now + _CHECKPOINT_INTERVAL
            try:
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:
                self.logger.debug("SQLiteEventStore: checkpoint skipped: %s", exc)

    def _purge_expired(self) -> None:
        """Delete unleased events older than ``max_age_seconds`` (when a purge is due),
        in short transactions."""
        if self._max_age is None:
            return
        busy = -1.0
        while True:
            drops: List[Tuple[List[PayloadDict], str]] = []
            if busy >= 0:
                _pause(busy)
            started = time.monotonic()
            with self._lock:
                now = self._clock()
                if now < self._next_purge:
                    return
                try:
                    conn = self._connection()
                    with _WriteTransaction(conn):
                        expired = conn.execute(
                            "SELECT id, payload FROM events WHERE created < ?"
                            " AND (lease_owner IS NULL OR lease_until <= ?) ORDER BY id LIMIT ?",
                            (now - self._max_age, now, _TXN_ROWS),
                        ).fetchall()
                        self._delete_rows(conn, [row[0] for row in expired])
                except Exception as exc:  # retried on the next call
                    self.logger.warning("SQLiteEventStore: purge of old events failed: %s", exc)
                    return
                more = len(expired) >= _TXN_ROWS
                if not more:
                    self._next_purge = now + self._purge_interval
                if expired:
                    self._count_drop("expired", len(expired), "events older than max_age_seconds")
                    if self.on_drop is not None:
                        drops.append((self._decode_for_report(expired), "expired"))
            busy = time.monotonic() - started
            self._notify(drops)
            if not more:
                return

    def _remember_leases(
        self, rowids: List[int], events: List[PayloadDict], until: float, now: float
    ) -> None:
        if now >= self._next_sweep:
            # Forget batches the emitter never cleaned up, long after their lease ended.
            horizon = now - 10 * self._lease_seconds
            for key, lease in list(self._leases.items()):
                if lease.until < horizon:
                    del self._leases[key]
                    self._by_row.pop(lease.rowid, None)
            self._next_sweep = now + self._lease_seconds
        for rowid, event in zip(rowids, events):
            stale = self._by_row.pop(rowid, None)
            if stale is not None:
                self._leases.pop(stale, None)
            self._leases[id(event)] = _Lease(rowid, event, until)
            self._by_row[rowid] = id(event)

    def _dead_owners(self, conn: sqlite3.Connection) -> List[int]:
        if not self._detect_dead:
            return []
        rows = conn.execute(
            "SELECT token, pid, start FROM owners WHERE host = ? AND token != ?",
            (_host_key(), self._token),
        ).fetchall()
        return [int(token) for token, pid, start in rows if _process_is_dead(int(pid), str(start))]

    # ------------------------------------------------------------------ cleanup

    def _release_locked(self, rowids: Sequence[int]) -> None:
        conn = self._connection()
        with _WriteTransaction(conn):
            for chunk in _chunks(rowids):
                conn.execute(
                    "UPDATE events SET lease_owner = NULL, lease_until = NULL"
                    f" WHERE id IN ({_marks(len(chunk))}){_OURS}",
                    (*chunk, self._token),
                )

    def _delete_leased_locked(self, rowids: Sequence[int]) -> None:
        conn = self._connection()
        with _WriteTransaction(conn):
            self._delete_rows(conn, rowids, _OURS, (self._token,))

    # ------------------------------------------------------------------ drops

    def _decode_for_report(self, rows: Sequence[Tuple[int, Any]]) -> List[PayloadDict]:
        out: List[PayloadDict] = []
        for rowid, text in rows:
            try:
                event = json.loads(text)
            except (TypeError, ValueError):
                event = None
            out.append(event if isinstance(event, dict) else {"_corrupt_rowid": rowid})
        return out

    def _count_drop(self, reason: str, n: int, message: Optional[str]) -> None:
        """Count dropped events and log, rate-limited (lock held)."""
        self._drops[reason] = self._drops.get(reason, 0) + n
        if message is None:
            return
        now = time.monotonic()
        if now >= self._drop_log_at:
            suppressed = self._drop_log_suppressed
            self._drop_log_suppressed = 0
            self._drop_log_at = now + _DROP_LOG_INTERVAL
            self.logger.warning(
                "SQLiteEventStore: dropped %d event(s) (%s): %s%s",
                n,
                reason,
                message,
                f" ({suppressed} more drops not logged)" if suppressed else "",
            )
        else:
            self._drop_log_suppressed += n

    def _drop_now(self, events: List[PayloadDict], reason: str, message: str) -> None:
        with self._lock:
            self._count_drop(reason, len(events), message)
        self._notify([(events, reason)])

    def _notify(self, drops: List[Tuple[List[PayloadDict], str]]) -> None:
        callback = self.on_drop
        if callback is None:
            return
        for events, reason in drops:
            try:
                callback(events, reason)
            except Exception:
                self.logger.exception("SQLiteEventStore: on_drop callback raised")

    # ------------------------------------------------------------------ fork safety

    def _check_pid(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            with _REINIT_LOCKS.setdefault(pid, threading.Lock()):
                if pid != self._pid:
                    self._reset_in_child(pid)

    def _prepare_fork(self) -> None:
        """Before fork: close the connection so no SQLite state is inherited."""
        self._fork_locked = self._lock.acquire(timeout=self._busy_timeout + 1.0)
        if self._fork_locked and self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = self._insert = None  # reopened lazily by the parent

    def _finish_fork_in_parent(self) -> None:
        if self._fork_locked:
            self._fork_locked = False
            self._lock.release()

    def _reset_in_child(self, pid: int) -> None:
        """First use in a forked child: fresh lock, connection, identity and counters."""
        self._lock = threading.Lock()
        self._fork_locked = False
        if self._conn is not None:
            _ABANDONED.append(self._conn)
            self._conn = None
        if self._insert is not None:
            _ABANDONED.append(self._insert)  # its cursor must not be freed either
            self._insert = None
        self._pid = pid
        self._count_until = -math.inf
        self._token = _new_token()
        self._start = _process_start(pid)
        self._leases.clear()
        self._by_row.clear()
        self._drops = {}
        self._drop_log_at = -math.inf
        self._drop_log_suppressed = 0
