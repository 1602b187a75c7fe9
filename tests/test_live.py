"""The broadcaster on its own, with a fake renderer that reads a counter as if it were the
database: snapshot first, coalescing, per-language renders, slow clients, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import threading
import time
import weakref
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from app.live import (
    PING,
    Broadcaster,
    Frames,
    MemoryBackend,
    RenderRequest,
    SessionChanged,
    Subscriber,
    backend_for_url,
    broadcaster,
    encode_event,
)
from app.main import worker_count
from tests.sse import parse, split

T = TypeVar("T")
DEADLINE = 5.0


def within(awaitable: Awaitable[T]) -> Awaitable[T]:
    return asyncio.wait_for(awaitable, DEADLINE)


class FakeDatabase:
    """What the renderer reads: a vote count and a phase state per session."""

    def __init__(self) -> None:
        self.votes = 0
        self.phase = "pending"
        self.countdown = False
        self.requests: list[RenderRequest] = []

    def render(self, request: RenderRequest) -> Frames:
        self.requests.append(request)
        frames = Frames(timed=self.countdown)
        if request.state:
            frames.state = encode_event("state", f'{{"phase": "{self.phase}"}}')
        for lang in request.results_langs:
            frames.results[lang] = encode_event("results", f"<p>{lang}\nvotes={self.votes}</p>")
        for lang in request.counts_langs:
            frames.counts[lang] = encode_event(
                "counts", f"{lang} votes={self.votes} connections={request.connections}"
            )
        return frames


def changed(phases: bool = False, code: str = "ABC234") -> SessionChanged:
    return SessionChanged(session_id=1, code=code, phases=phases)


_UNREAD: dict[int, list[bytes]] = {}


async def next_frame(subscriber_frames: asyncio.Queue[bytes | None]) -> tuple[str, str]:
    """The next event a subscriber receives (one write may carry several, as a fan-out joins
    what a subscriber gets)."""
    unread = _UNREAD.setdefault(id(subscriber_frames), [])
    if not unread:
        frame = await within(subscriber_frames.get())
        assert frame is not None, "the stream ended"
        unread.extend(split(frame))
    return parse(unread.pop(0))


def run(coro: Awaitable[None]) -> None:
    asyncio.run(within(coro))  # type: ignore[arg-type]


def test_snapshot_comes_first_then_updates_after_a_change() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as sub:
            db.votes = 3
            snapshot = [parse(f) for f in await within(hub.snapshot(sub))]
            assert snapshot == [
                ("state", '{"phase": "pending"}'),
                ("results", "<p>en\nvotes=3</p>"),
            ]
            db.votes = 4
            hub.publish(changed())
            assert await next_frame(sub.queue) == ("results", "<p>en\nvotes=4</p>")
            db.phase = "open"
            hub.publish(changed(phases=True))
            assert await next_frame(sub.queue) == ("state", '{"phase": "open"}')
            assert sub.queue.empty()  # results did not change: not sent again
        await hub.stop()

    run(scenario())


def test_a_change_between_subscribe_and_snapshot_is_not_missed() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as sub:
            db.votes = 1
            hub.publish(changed())  # committed after subscribing, before the snapshot is read
            frames = [parse(f) for f in await within(hub.snapshot(sub))]
            while True:  # whatever order, the newest data arrives last
                frames.append(await next_frame(sub.queue))
                if frames[-1][0] == "results":
                    break
            assert frames[-1] == ("results", "<p>en\nvotes=1</p>")
        await hub.stop()

    run(scenario())


def test_a_burst_of_100_changes_renders_once_and_the_last_render_is_exact() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.05)
        await hub.start()
        async with hub.subscribe("ABC234", "en", presenter=True) as sub:
            await within(hub.snapshot(sub))
            renders_before = hub.renders
            for _ in range(100):  # a room voting at once
                db.votes += 1
                hub.publish(changed())
            assert await next_frame(sub.queue) == ("results", "<p>en\nvotes=100</p>")
            assert await next_frame(sub.queue) == ("counts", "en votes=100 connections=0")
            assert hub.renders - renders_before == 1
        await hub.stop()

    run(scenario())


def test_facts_published_from_other_threads_arrive_and_coalesce() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.05)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as sub:
            await within(hub.snapshot(sub))
            renders_before = hub.renders

            lock = threading.Lock()

            def voters() -> None:
                for _ in range(100):
                    with lock:
                        db.votes += 1
                    hub.publish(changed())

            threads = [threading.Thread(target=voters) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                await asyncio.to_thread(thread.join)
            latest = ""
            while latest != "<p>en\nvotes=400</p>":
                latest = (await next_frame(sub.queue))[1]
            # one render per tick at most, however many facts: far fewer than 400
            assert hub.renders - renders_before < 40
        await hub.stop()

    run(scenario())


def test_each_language_is_rendered_once_and_shared() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01)
        await hub.start()
        async with (
            hub.subscribe("ABC234", "en") as a,
            hub.subscribe("ABC234", "en") as b,
            hub.subscribe("ABC234", "zh-Hans") as c,
        ):
            for sub in (a, b, c):
                await within(hub.snapshot(sub))
            db.requests.clear()
            db.votes = 7
            hub.publish(changed())
            frame_a = await within(a.queue.get())
            frame_b = await within(b.queue.get())
            frame_c = await within(c.queue.get())
            assert frame_a is frame_b  # the very same bytes
            assert parse(frame_c or b"") == ("results", "<p>zh-Hans\nvotes=7</p>")
            assert len(db.requests) == 1
            assert db.requests[0].results_langs == {"en", "zh-Hans"}
            assert db.requests[0].counts_langs == frozenset()  # no presenter is watching
        await hub.stop()

    run(scenario())


def test_clients_connecting_together_share_one_snapshot_render() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01)
        await hub.start()
        subs = []
        contexts = [hub.subscribe("ABC234", "en") for _ in range(50)]
        for context in contexts:
            subs.append(await context.__aenter__())
        snapshots = await within(asyncio.gather(*(hub.snapshot(s) for s in subs)))
        assert all(s == snapshots[0] for s in snapshots)
        assert len(db.requests) == 1
        for context in contexts:
            await context.__aexit__(None, None, None)
        await hub.stop()

    run(scenario())


def test_phones_joining_one_after_another_reuse_a_snapshot_until_the_session_changes() -> None:
    """A hall joining: each phone after the first gets the snapshot already rendered, without
    a read of its own, until a fact about the session arrives; from then on the phones that
    join see the change. Presenters (whose counts carry the connections) are rendered anew."""

    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01, snapshot_keep=3600)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as first:
            await within(hub.snapshot(first))
            assert len(db.requests) == 1
            async with hub.subscribe("ABC234", "en") as second:
                assert await within(hub.snapshot(second)) == await within(hub.snapshot(first))
                assert len(db.requests) == 1
                db.votes = 1
                hub.publish(changed())
                assert await next_frame(second.queue) == ("results", "<p>en\nvotes=1</p>")
                async with hub.subscribe("ABC234", "en") as third:
                    frames = [parse(f) for f in await within(hub.snapshot(third))]
                    assert ("results", "<p>en\nvotes=1</p>") in frames
                async with hub.subscribe("ABC234", "en", presenter=True) as presenter:
                    renders = len(db.requests)
                    await within(hub.snapshot(presenter))
                    await within(hub.snapshot(presenter))
                    assert len(db.requests) == renders + 2
        await hub.stop()

    run(scenario())


@pytest.mark.parametrize("keep, countdown", [(0, False), (3600, True)])
def test_a_snapshot_is_not_reused_past_its_time_nor_with_a_countdown(
    keep: float, countdown: bool
) -> None:
    """Time alone moves a countdown on (and refreshes what no fact announced)."""

    async def scenario() -> None:
        db = FakeDatabase()
        db.countdown = countdown
        hub = Broadcaster("memory://", db.render, tick=0.01, snapshot_keep=keep)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as phone:
            await within(hub.snapshot(phone))
            db.votes = 2  # (a change no fact announced)
            frames = [parse(f) for f in await within(hub.snapshot(phone))]
            assert ("results", "<p>en\nvotes=2</p>") in frames
            assert len(db.requests) == 2
        await hub.stop()

    run(scenario())


def test_only_presenters_get_counts_with_the_number_of_phones_connected() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.01)
        await hub.start()
        async with hub.subscribe("ABC234", "en", presenter=True) as presenter:
            events = [parse(f)[0] for f in await within(hub.snapshot(presenter))]
            assert events == ["state", "results", "counts"]
            async with hub.subscribe("ABC234", "en") as phone:
                assert [parse(f)[0] for f in await within(hub.snapshot(phone))] == [
                    "state",
                    "results",
                ]
                # the presenter learns that a phone connected
                assert await next_frame(presenter.queue) == (
                    "counts",
                    "en votes=0 connections=1",
                )
        await hub.stop()

    run(scenario())


def test_a_slow_client_is_disconnected_instead_of_buffering_forever() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.001, queue_size=3)
        await hub.start()
        async with hub.subscribe("ABC234", "en") as slow, hub.subscribe("ABC234", "en") as quick:
            await within(hub.snapshot(slow))
            await within(hub.snapshot(quick))
            for n in range(1, 10):
                db.votes = n
                hub.publish(changed())
                assert await next_frame(quick.queue) == ("results", f"<p>en\nvotes={n}</p>")
            assert slow.closed
            received = [frame async for frame in slow.frames()]
            assert received == []  # dropped: its browser reconnects and gets a fresh snapshot
        await hub.stop()

    run(scenario())


def test_stop_ends_every_stream_promptly() -> None:
    async def scenario() -> None:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render)
        await hub.start()

        snapshots = asyncio.Semaphore(0)

        async def reader() -> int:
            async with hub.subscribe("ABC234", "en") as sub:
                await hub.snapshot(sub)
                snapshots.release()
                return len([frame async for frame in sub.frames()])

        readers = [asyncio.create_task(reader()) for _ in range(20)]
        for _ in readers:  # every stream is open and has had its snapshot
            await within(snapshots.acquire())
        await within(hub.stop())
        assert await within(asyncio.gather(*readers)) == [0] * 20

    run(scenario())


def test_publishing_before_start_or_after_stop_is_harmless() -> None:
    async def scenario() -> None:
        hub = Broadcaster("memory://", FakeDatabase().render)
        hub.publish(changed())
        await hub.start()
        await hub.stop()
        hub.publish(changed())
        with pytest.raises(RuntimeError):
            async with hub.subscribe("ABC234", "en"):
                pass

    run(scenario())


def test_backend_is_chosen_by_url() -> None:
    assert isinstance(backend_for_url("memory://"), MemoryBackend)
    assert type(backend_for_url("postgresql://db/beliefgap")).__name__ == "PostgresBackend"
    with pytest.raises(ValueError, match="unknown broadcast backend"):
        backend_for_url("carrier-pigeon://")


def test_multi_line_data_becomes_several_data_lines() -> None:
    frame = encode_event("results", "<div>\n  <p>a</p>\r\n</div>")
    assert frame == b"event: results\ndata: <div>\ndata:   <p>a</p>\ndata: </div>\n\n"


def test_worker_count_reads_the_server_command_line() -> None:
    assert worker_count(["uvicorn", "app.main:app"], {}) == 1
    assert worker_count(["uvicorn", "app.main:app", "--workers", "4"], {}) == 4
    assert worker_count(["uvicorn", "--workers=2"], {}) == 2
    assert worker_count(["gunicorn", "-w", "3"], {}) == 3
    assert worker_count(["uvicorn"], {"WEB_CONCURRENCY": "2"}) == 2


def test_a_quiet_stream_sends_a_ping_event_then_the_update() -> None:
    """The ping is an event, not a comment: the phone's page sees its stream is alive."""

    async def scenario() -> list[bytes]:
        subscriber = Subscriber("ABCDEF", "en", presenter=False, queue_size=4)
        received: list[bytes] = []
        stream = subscriber.frames(ping_after=0.05)
        received.append(await asyncio.wait_for(anext(stream), 5))
        subscriber.offer(b"event: state\ndata: {}\n\n")
        received.append(await asyncio.wait_for(anext(stream), 5))
        subscriber.close()
        received.extend([frame async for frame in stream])
        return received

    assert asyncio.run(scenario()) == [b"event: ping\ndata:\n\n", b"event: state\ndata: {}\n\n"]


def _passes_of_a_fan_out(
    streams: int, write_cost: float = 0.0, fan_outs_of_nothing: int = 0
) -> list[int]:
    """A room of ``streams`` phones whose question opens; each stream counts itself when it
    gets the frame (after ``write_cost`` seconds of CPU, its write), and a task standing for
    the votes sent at that moment notes the count each time the loop lets it run: the sizes of
    the passes the room was woken in. ``fan_outs_of_nothing``: fan-outs before, with nothing
    new for the phones (such as the presenter's counts, or results still hidden)."""

    async def scenario() -> list[int]:
        db = FakeDatabase()
        hub = Broadcaster("memory://", db.render, tick=0.001)
        await hub.start()
        got = 0
        seen: list[int] = []

        async def phone(subscriber: Subscriber) -> None:
            nonlocal got
            await subscriber.queue.get()
            written = time.thread_time() + write_cost
            while time.thread_time() < written:
                pass
            got += 1

        async with contextlib.AsyncExitStack() as stack:
            subscribers = [
                await stack.enter_async_context(hub.subscribe("ABC234", "en"))
                for _ in range(streams)
            ]
            phones = [asyncio.create_task(phone(s)) for s in subscribers]
            for _ in range(fan_outs_of_nothing):
                await hub._fan_out(hub._channels["ABC234"], Frames())
            assert got == 0
            hub.publish(changed(phases=True))
            while got < streams:
                if got not in seen:
                    seen.append(got)
                await asyncio.sleep(0)
            await within(asyncio.gather(*phones))
        await hub.stop()
        return [b - a for a, b in itertools.pairwise([*seen, streams])]

    return asyncio.run(within(scenario()))  # type: ignore[arg-type]


def test_a_room_the_loop_writes_within_a_pass_gets_its_frame_in_one_pass() -> None:
    """Nothing the loop has to do (a vote sent as the question opens) comes between a room of
    phones and its question, when waking them all holds the loop no longer than a pass (here
    four fifths of the streams a first pass wakes, before it has measured their writes)."""
    streams = int(0.8 * broadcaster.FAN_OUT_PASS_SECONDS / broadcaster.FAN_OUT_FIRST_COST)
    assert streams >= 100
    assert _passes_of_a_fan_out(streams) == [streams]


def test_a_larger_room_is_woken_in_passes_with_other_work_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past what the loop writes in a pass, the rest of the room waits for the next pass and
    the votes already sent are read in between (here a pass is 50 streams' worth, as measured
    from the streams' writes, not only at first)."""
    first_cost = broadcaster.FAN_OUT_FIRST_COST
    monkeypatch.setattr(broadcaster, "FAN_OUT_PASS_SECONDS", 50 * first_cost)
    assert _passes_of_a_fan_out(300, write_cost=2 * first_cost) == [50] * 6
    # Fan-outs that woke no stream teach nothing: the room is still woken in passes.
    passes = _passes_of_a_fan_out(300, write_cost=2 * first_cost, fan_outs_of_nothing=20)
    assert passes == [50] * 6


def test_a_room_that_has_joined_is_kept_out_of_the_collectors_scans() -> None:
    """A collection that scans a room's thousands of streams stops the server while the room
    votes: once a room has joined, its streams' objects are frozen (``gc.freeze``). Once most
    of them have ended, what was frozen goes back to the collector: memory held only in a
    reference cycle is not kept for good."""

    class Held:
        """Garbage in a reference cycle, old enough to be frozen with the room."""

        def __init__(self) -> None:
            self.cycle = self

    def streams_scanned() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, Subscriber))

    async def settled(hub: Broadcaster) -> None:
        for _ in range(1000):
            if hub._settling is None:
                return
            await asyncio.sleep(broadcaster.SETTLE_SECONDS / 4)

    async def scenario() -> None:
        hub = Broadcaster("memory://", FakeDatabase().render)
        await hub.start()
        held = Held()
        gc.collect()  # now among the oldest objects, which a young collection leaves alone
        cycle = weakref.ref(held)
        del held
        room = [hub.add("ABC234", "en") for _ in range(broadcaster.SETTLE_STREAMS)]
        assert streams_scanned() == len(room)
        await within(settled(hub))
        assert streams_scanned() == 0
        gc.collect()
        assert cycle() is not None  # frozen with the room
        for subscriber in room:
            hub.remove(subscriber)
        next_room = [hub.add("DEF567", "en") for _ in range(broadcaster.SETTLE_STREAMS)]
        await within(settled(hub))
        assert streams_scanned() == 0
        assert cycle() is None
        for subscriber in next_room:
            hub.remove(subscriber)
        await hub.stop()

    run(scenario())


def test_every_quiet_stream_gets_its_ping_from_the_shared_timer() -> None:
    """One timer per event loop pings the quiet streams: each of them gets its ping, a stream
    with a frame waiting gets the frame, and a stream that ended gets nothing more."""

    async def scenario() -> None:
        quiet = [Subscriber("ABCDEF", "en", presenter=False, queue_size=4) for _ in range(3)]
        busy = Subscriber("ABCDEF", "en", presenter=False, queue_size=4)
        ended = Subscriber("ABCDEF", "en", presenter=False, queue_size=4)
        streams = [s.frames(ping_after=0.05) for s in [*quiet, busy, ended]]
        busy.offer(b"event: state\ndata: {}\n\n")
        ended.close()
        firsts = await within(
            asyncio.gather(*(anext(stream, None) for stream in streams))  # type: ignore[arg-type]
        )
        assert firsts == [PING] * 3 + [b"event: state\ndata: {}\n\n", None]
        assert await within(anext(streams[3])) == PING  # quiet since its frame

    run(scenario())
