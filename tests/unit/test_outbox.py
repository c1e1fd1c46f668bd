"""The outbox with a scripted transport: order, retries, bounds and shutdown."""

from __future__ import annotations

from flixtube_common.backoff import Backoff
from flixtube_common.outbox import Outbox
from flixtube_common.views import View
from tests.fakes import ScriptedTransport
from tests.harness import wait_until

FAST = Backoff(first=0.001, cap=0.01)


def test_views_survive_failures_and_keep_their_order() -> None:
    transport = ScriptedTransport(failures=5)
    outbox = Outbox(transport, backoff=FAST, idle_tick=0.01)
    outbox.start()
    for name in "abcd":
        assert outbox.put(View(name))
    wait_until(lambda: len(transport.delivered) == 4, what="delivery")
    assert transport.delivered == ["a", "b", "c", "d"]
    assert outbox.stats() == {"buffered": 0, "sent": 4, "dropped": 0}
    outbox.close()


def test_a_full_outbox_drops_and_counts() -> None:
    transport = ScriptedTransport()
    transport.gate.clear()  # the sender is stuck: nothing leaves the outbox
    outbox = Outbox(transport, capacity=2, backoff=FAST, idle_tick=0.01)
    outbox.start()
    assert outbox.put(View("first"))  # taken by the sender, waiting at the gate
    wait_until(lambda: outbox.stats()["buffered"] == 0, what="the sender to take the first view")
    results = [outbox.put(View(name)) for name in ("a", "b", "c")]
    assert results == [True, True, False]
    assert outbox.dropped == 1
    transport.gate.set()
    outbox.close()
    assert transport.delivered == ["first", "a", "b"]


def test_bounded_retries_give_up_loudly() -> None:
    transport = ScriptedTransport(failures=100)
    outbox = Outbox(transport, max_attempts=3, backoff=FAST, idle_tick=0.01)
    outbox.start()
    outbox.put(View("lost"))
    wait_until(lambda: outbox.dropped == 1, what="the view to be given up")
    assert transport.failures == 97
    outbox.close()


def test_a_rejected_view_is_not_retried() -> None:
    transport = ScriptedTransport(reject={"bad"})
    outbox = Outbox(transport, backoff=FAST, idle_tick=0.01)
    outbox.start()
    outbox.put(View("bad"))
    outbox.put(View("good"))
    wait_until(lambda: transport.delivered == ["good"], what="the next view")
    assert outbox.dropped == 1
    outbox.close()


def test_close_delivers_what_is_buffered() -> None:
    transport = ScriptedTransport(failures=2)
    outbox = Outbox(transport, backoff=FAST, idle_tick=0.01)
    outbox.start()
    for name in "xyz":
        outbox.put(View(name))
    outbox.close(timeout=5)
    assert transport.delivered == ["x", "y", "z"]
    assert not outbox.ready


def test_ready_follows_the_transport() -> None:
    transport = ScriptedTransport()
    outbox = Outbox(transport, backoff=FAST, idle_tick=0.01)
    assert not outbox.ready
    outbox.start()
    wait_until(lambda: outbox.ready, what="connect on idle")
    outbox.close()


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, cap=3)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1, 2, 3, 3]
    backoff.reset()
    assert backoff.next_delay() == 0.5
