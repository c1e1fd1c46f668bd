"""The outbox with a scripted transport and its files on disk: order, retries, bounds, shutdown, and the
views of a killed process delivered by the next one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools import procfile
from flixtube_common.backoff import Backoff
from flixtube_common.outbox import Outbox
from flixtube_common.spool import ROW_OVERHEAD, Spool
from flixtube_common.views import View
from tests.fakes import ScriptedTransport
from tests.harness import wait_until

FAST = Backoff(first=0.001, cap=0.01)
MIB = 1024 * 1024


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def outbox_of(transport: ScriptedTransport, folder: Path, max_bytes: int = MIB) -> Outbox:
    return Outbox(transport, Spool(folder, max_bytes), backoff=FAST, idle_tick=0.01)


def test_views_survive_failures_and_keep_their_order(folder: Path) -> None:
    transport = ScriptedTransport(failures=5)
    outbox = outbox_of(transport, folder)
    outbox.start()
    for name in "abcd":
        assert outbox.put(View(name))
    wait_until(lambda: len(transport.delivered) == 4, what="delivery")
    assert transport.delivered == ["a", "b", "c", "d"]
    assert outbox.stats() | {"max_bytes": 0} == {
        "buffered": 0,
        "sent": 4,
        "dropped": 0,
        "refused": 0,
        "bytes": 0,
        "max_bytes": 0,
    }
    outbox.close()


def test_a_view_is_on_disk_before_put_returns_and_until_it_is_delivered(folder: Path) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()  # the sender is stuck in send: nothing is delivered yet
    outbox = outbox_of(transport, folder)
    outbox.start()
    view = View("kept.mp4")
    assert outbox.put(view)
    on_disk = Spool(folder, MIB)  # another process's view of the folder, here its own file
    [database] = [path for path in folder.glob("outbox-*.sqlite3")]
    assert view.view_id.encode() in database.read_bytes() + Path(f"{database}-wal").read_bytes()
    assert on_disk.adopt_orphans() == 0, "a live process's views are never taken from it"
    transport.gate.set()
    wait_until(lambda: outbox.stats()["buffered"] == 0, what="delivery")
    assert transport.delivered == ["kept.mp4"]
    outbox.close()
    on_disk.close()


def test_a_full_outbox_refuses_and_counts(folder: Path) -> None:
    size = len(View("a").to_bytes()) + ROW_OVERHEAD
    transport = ScriptedTransport()
    transport.gate.clear()
    outbox = outbox_of(transport, folder, max_bytes=2 * size)
    outbox.start()
    results = [outbox.put(View(name)) for name in ("a", "b", "c")]
    assert results == [True, True, False]
    assert (outbox.refused, outbox.stats()["buffered"]) == (1, 2)
    transport.gate.set()
    wait_until(lambda: outbox.stats()["buffered"] == 0, what="delivery")
    assert outbox.put(View("d")), "delivered views free the budget"
    outbox.close()
    assert transport.delivered == ["a", "b", "d"]


def test_a_rejected_view_is_not_retried(folder: Path) -> None:
    transport = ScriptedTransport(reject={"bad"})
    outbox = outbox_of(transport, folder)
    outbox.start()
    outbox.put(View("bad"))
    outbox.put(View("good"))
    wait_until(lambda: transport.delivered == ["good"], what="the next view")
    assert outbox.dropped == 1
    outbox.close()


def test_close_delivers_what_is_waiting_and_leaves_no_file(folder: Path) -> None:
    transport = ScriptedTransport(failures=2)
    outbox = outbox_of(transport, folder)
    outbox.start()
    for name in "xyz":
        outbox.put(View(name))
    outbox.close(timeout=5)
    assert transport.delivered == ["x", "y", "z"]
    assert not outbox.ready
    assert list(folder.iterdir()) == []


def test_what_close_could_not_deliver_is_delivered_by_the_next_process(folder: Path) -> None:
    down = ScriptedTransport(failures=10**6)
    first = outbox_of(down, folder)
    first.start()
    views = [View(f"{n}.mp4") for n in range(5)]
    for view in views:
        first.put(view)
    first.close(timeout=0.2)
    assert down.delivered == []

    transport = ScriptedTransport()
    second = outbox_of(transport, folder)
    second.start()
    wait_until(lambda: len(transport.delivered) == 5, what="the adopted views")
    assert transport.delivered == [view.video_path for view in views]
    second.close()


KILLED_WRITER = """
import os, sys
from pathlib import Path
from flixtube_common.spool import Spool
from flixtube_common.views import View
spool = Spool(Path(sys.argv[1]), 1 << 20)
for n in range(3):
    assert spool.append(View(f"killed-{n}.mp4", f"id-{n}"))
os.kill(os.getpid(), 9)
"""


def test_the_views_of_a_sigkilled_process_are_adopted_once_in_order(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(folder)],
        env=procfile.process_env({}),
        check=False,
        timeout=60,
    )
    assert done.returncode == -9
    spool = Spool(folder, MIB)
    assert spool.adopt_orphans() == 3
    assert [view.view_id for _row, view in spool.oldest(10)] == ["id-0", "id-1", "id-2"]
    assert spool.adopt_orphans() == 0, "an adopted file is gone"
    assert len(list(folder.glob("outbox-*.sqlite3"))) == 1
    spool.close()


def test_ready_follows_the_transport(folder: Path) -> None:
    transport = ScriptedTransport()
    outbox = outbox_of(transport, folder)
    assert not outbox.ready
    outbox.start()
    wait_until(lambda: outbox.ready, what="connect on idle")
    outbox.close()


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, cap=3)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1, 2, 3, 3]
    backoff.reset()
    assert backoff.next_delay() == 0.5
