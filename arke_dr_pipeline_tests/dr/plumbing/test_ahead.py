"""The event chain on a thread beside the export: every item once, in order, and its error raised to the taker."""

import threading

import pytest

from arke_dr_pipeline.dr.plumbing.ahead import Ahead


def _everything(feed: Ahead) -> list:
    out = []
    while not feed.finished:
        out += feed.take(wait=True)
    return out


def test_every_item_arrives_once_and_in_order_through_a_small_queue():
    feed = Ahead(iter(range(10_000)), limit=7)
    assert _everything(feed) == list(range(10_000))
    assert feed.take(wait=True) == []


def test_take_without_waiting_gives_only_what_is_ready():
    gate = threading.Event()

    def items():
        yield "first"
        gate.wait()
        yield "second"

    feed = Ahead(items())
    assert feed.take(wait=True) == ["first"]
    assert feed.take() == []  # "second" waits on the gate, and take does not
    gate.set()
    assert _everything(feed) == ["second"]


def test_the_walks_error_is_raised_to_the_taker_after_what_came_before_it():
    def items():
        yield 1
        yield 2
        raise LookupError("event chain broken at bafy…")

    feed = Ahead(items())
    got = []
    with pytest.raises(LookupError, match="event chain broken"):
        while not feed.finished:
            got += feed.take(wait=True)
    assert got == [1, 2]
    assert feed.finished


def test_a_taker_that_leaves_stops_the_thread_and_its_generator_cleans_up():
    closed = threading.Event()

    def items():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    feed = Ahead(items(), limit=3)
    assert feed.take(wait=True)[0] == 0
    feed.close()
    assert closed.is_set()
    assert not feed._thread.is_alive()
