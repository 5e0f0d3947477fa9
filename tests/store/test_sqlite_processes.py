"""SQLiteEventStore with real processes and threads: kill -9, takeover, sharing, fork."""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

CHILD = Path(__file__).with_name("_child.py")
REPO = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals and /proc")
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def spawn(command: str, **args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), command, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )


def wait_ready(proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if readable else ""
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"child not ready ({line!r}): {err}")


def kill9(proc: subprocess.Popen[str], reap: bool = True) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    if reap:
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL


@pytest.fixture
def children() -> Iterator[List[subprocess.Popen[str]]]:
    procs: List[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def eid_index(event: Dict[str, Any]) -> int:
    return int(event["eid"].rsplit("-", 1)[1])


# ----------------------------------------------------------------------------- kill -9


@posix_only
def test_events_survive_sigkill_and_dead_owner_leases_are_taken_over_at_once(
    make_store: Any, db_path: Path, children: List[Any]
) -> None:
    proc = spawn("hold", path=str(db_path), n=200, hold=80, prefix="k")
    children.append(proc)
    wait_ready(proc)
    kill9(proc)

    store = make_store(lease_seconds=60)  # the dead child's lease would last another minute
    assert store.size() == 200
    batch = store.get_events_batch()
    assert [e["eid"] for e in batch] == [f"k-{i}" for i in range(200)]
    store.cleanup(batch, False)
    assert store.size() == 0


@posix_only
def test_sigkilled_lease_holder_is_taken_over_after_lease_expiry(
    make_store: Any, db_path: Path, children: List[Any]
) -> None:
    proc = spawn("hold", path=str(db_path), n=50, hold=30, prefix="t", lease_seconds=1.5)
    children.append(proc)
    wait_ready(proc)
    ready_at = time.monotonic()
    kill9(proc)

    store = make_store(detect_dead_owners=False)  # time-based expiry only
    first = store.get_events_batch()
    if time.monotonic() - ready_at < 1.0:  # the dead child's lease is still running
        assert [e["eid"] for e in first] == [f"t-{i}" for i in range(30, 50)]
    deadline = time.monotonic() + 10
    taken = list(first)
    while len(taken) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
        taken.extend(store.get_events_batch())
    assert sorted(eid_index(e) for e in taken) == list(range(50))
    store.cleanup(taken, False)
    assert store.size() == 0


@linux_only
def test_unreaped_zombie_owner_counts_as_dead(
    make_store: Any, db_path: Path, children: List[Any]
) -> None:
    proc = spawn("hold", path=str(db_path), n=10, hold=10, prefix="z")
    children.append(proc)
    wait_ready(proc)
    kill9(proc, reap=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            break
        time.sleep(0.01)
    store = make_store(lease_seconds=60)
    assert len(store.get_events_batch()) == 10
    assert proc.poll() is not None  # now reap it


@linux_only
def test_reused_pid_is_recognised_by_its_start_time(
    make_store: Any, db_path: Path, store_module: Any
) -> None:
    me = os.getpid()
    start = store_module._process_start(me)
    assert start
    assert store_module._process_is_dead(me, start) is False
    assert store_module._process_is_dead(me, "") is False
    assert store_module._process_is_dead(me, "1") is True  # same pid, other process

    a = make_store()
    a.add_event({"eid": "r-0"})
    assert len(a.get_events_batch()) == 1
    # Make a's owner row look like an earlier process that had our pid.
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    conn.execute("UPDATE owners SET start = '1'")
    conn.close()
    b = make_store()
    assert [e["eid"] for e in b.get_events_batch()] == ["r-0"]


def test_live_owner_in_this_process_is_not_taken_over(make_store: Any) -> None:
    a, b = make_store(), make_store()
    a.add_event({"eid": "x-0"})
    assert len(a.get_events_batch()) == 1
    assert b.get_events_batch() == []


# ----------------------------------------------------------------------------- sharing


@posix_only
def test_four_processes_share_one_file_without_loss_or_double_lease(
    make_store: Any, db_path: Path, tmp_path: Path, children: List[Any]
) -> None:
    n_workers, n_add = 4, 300
    make_store()  # create the schema before the race starts
    done_dir = tmp_path / "done"
    done_dir.mkdir()
    outs = [tmp_path / f"w{w}.json" for w in range(n_workers)]
    for w in range(n_workers):
        children.append(
            spawn(
                "worker",
                path=str(db_path),
                wid=w,
                n_add=n_add,
                n_workers=n_workers,
                done_dir=str(done_dir),
                out=str(outs[w]),
                seed=w,
                retry_prob=0.25,
                seconds=60,
            )
        )
    for proc in children:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err

    reports = [json.loads(out.read_text()) for out in outs]
    assert all(r["finished"] and r["failed_adds"] == 0 for r in reports)
    handed = collections.Counter(e for r in reports for e in r["handed"])
    deleted = collections.Counter(e for r in reports for e in r["deleted"])
    retried = collections.Counter(e for r in reports for e in r["retried"])
    expected = {f"w{w}-{i}" for w in range(n_workers) for i in range(n_add)}
    assert set(deleted) == expected, "every event delivered"
    assert max(deleted.values()) == 1, "no event delivered twice (no double lease)"
    assert all(handed[e] == 1 + retried[e] for e in expected), "hand-outs = 1 + retries"
    assert sum(retried.values()) > 0
    consumers = {i for i, r in enumerate(reports) if r["deleted"]}
    assert len(consumers) > 1
    assert make_store().size() == 0


def test_sixteen_threads_adding_concurrently(make_store: Any) -> None:
    store = make_store()
    n_threads, per_thread = 16, 250
    barrier = threading.Barrier(n_threads)
    failures: List[str] = []

    def add(t: int) -> None:
        barrier.wait(timeout=10)
        for i in range(per_thread):
            if not store.add_event({"eid": f"t{t}-{i}"}):
                failures.append(f"t{t}-{i}")

    threads = [threading.Thread(target=add, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert failures == []
    assert store.size() == n_threads * per_thread
    batch = store.get_events_batch()
    assert len({e["eid"] for e in batch}) == n_threads * per_thread
    for t in range(n_threads):  # each thread's events in its own order
        mine = [eid_index(e) for e in batch if e["eid"].startswith(f"t{t}-")]
        assert mine == list(range(per_thread))


def test_threads_adding_and_consuming(make_store: Any) -> None:
    store = make_store()
    n_adders, per_adder = 6, 200
    consumed: List[str] = []
    adders_done = threading.Event()

    def add(t: int) -> None:
        for i in range(per_adder):
            assert store.add_event({"eid": f"a{t}-{i}"})

    def consume() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = store.get_events_batch(limit=17)
            if batch:
                consumed.extend(e["eid"] for e in batch)
                store.cleanup(batch, False)
            elif adders_done.is_set() and store.size() == 0:
                return

    adders = [threading.Thread(target=add, args=(t,)) for t in range(n_adders)]
    consumers = [threading.Thread(target=consume) for _ in range(2)]
    for thread in adders + consumers:
        thread.start()
    for thread in adders:
        thread.join(timeout=60)
    adders_done.set()
    for thread in consumers:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert len(consumed) == n_adders * per_adder
    assert len(set(consumed)) == n_adders * per_adder


# ----------------------------------------------------------------------------- fork


def wait_child(pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return (
                os.waitstatus_to_exitcode(status)
                if hasattr(os, "waitstatus_to_exitcode")
                else status >> 8
            )
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_its_own_connection_and_parent_keeps_working(make_store: Any) -> None:
    store = make_store()
    for i in range(10):
        store.add_event({"eid": f"f-{i}"})
    parent_batch = store.get_events_batch(limit=5)
    parent_conn = store._conn

    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            ok = store.add_event({"eid": "f-child"})
            batch = store.get_events_batch()
            got = [e["eid"] for e in batch]
            store.cleanup(batch, False)
            fresh = store._conn is not None and store._conn is not parent_conn
            expected = [f"f-{i}" for i in range(5, 10)] + ["f-child"]
            code = 0 if ok and fresh and got == expected and store.size() == 5 else 2
        except BaseException:
            code = 3
        finally:
            os._exit(code)

    assert wait_child(pid) == 0
    # The parent's leases and connection survive the fork.
    assert store.get_events_batch() == []
    store.cleanup(parent_batch, False)
    assert store.size() == 0
    assert store.add_event({"eid": "f-after"})
    assert store.size() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_while_another_thread_is_adding(make_store: Any) -> None:
    # The adding thread writes ~50,000 events/s: a slow round must not reach the default
    # 100,000-event cap, or the child's add is refused as "buffer_full" (seen once in CI).
    store = make_store(max_events=10**9)
    stop = threading.Event()
    added = [0]

    def keep_adding() -> None:
        while not stop.is_set():
            if store.add_event({"eid": f"bg-{added[0]}"}):
                added[0] += 1

    thread = threading.Thread(target=keep_adding)
    thread.start()
    try:
        for round_ in range(3):
            time.sleep(0.02)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    ok = store.add_event({"eid": f"child-{round_}"})
                    code = 2 if not ok else 0 if store.size() >= 1 else 4
                except BaseException:
                    code = 3
                finally:
                    os._exit(code)
            assert wait_child(pid) == 0
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert store.size() == added[0] + 3


def test_pid_change_without_fork_hooks_abandons_the_inherited_connection(
    make_store: Any, store_module: Any
) -> None:
    store = make_store()
    store.add_event({"eid": "p-0"})
    leased = store.get_events_batch()
    inherited = store._conn
    old_token = store._token
    store._pid = -1  # as if this process had been forked without os.register_at_fork hooks
    assert store.add_event({"eid": "p-1"})
    assert store._conn is not inherited and store._token != old_token
    assert inherited in store_module._ABANDONED
    inherited.execute("SELECT 1")  # abandoned, not closed
    store.cleanup(leased, False)  # leases of the "parent" are not ours any more
    assert store.size() == 2
    store_module._ABANDONED.remove(inherited)
    inherited.close()
