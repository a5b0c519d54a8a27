"""Unit tests of the dashboard's helpers: gzip negotiation, heartbeat dating, throughput buckets."""

from __future__ import annotations

import pytest
from saq.job import Job, Status

from litestar_saq.backends.memory import MemoryQueue
from litestar_saq.web.assets import accepts_gzip, load_assets
from litestar_saq.web.insights import MINUTE_MS, collect_dead_letters, collect_throughput, describe_workers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", True),
        ("GZIP", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*;q=0", False),
        ("br, *;q=0.1", True),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_assets_come_from_the_installed_saq_and_from_us() -> None:
    assets = load_assets()
    assert {"pico.min.css", "snabbdom.js", "app.js"} <= set(assets)
    assert assets["pico.min.css"].gzipped and assets["snabbdom.js"].gzipped
    assert not assets["app.js"].gzipped
    assert assets["litestar-saq/ops.js"].media_type == "text/javascript"
    assert assets["pico.min.css"].media_type == "text/css"


def test_last_heartbeat_is_dated_by_the_earliest_start_bound() -> None:
    starts: dict[tuple[str, str], float] = {}

    def seen(uptime: int, now: int) -> int | None:
        info = {"workers": {"w1": {"stats": {"uptime": uptime}, "metadata": {"pid": 1}}}}
        (worker,) = describe_workers("q", info, starts, now)
        return worker["last_heartbeat"]  # type: ignore[no-any-return]

    # The worker started at t=1_000 and beats every 10 s; sightings come at various delays.
    assert seen(uptime=10_000, now=14_000) == 14_000  # nothing better known yet: "just now"
    assert seen(uptime=20_000, now=21_500) == 21_500  # seen 0.5 s after the beat at 21 s
    assert seen(uptime=20_000, now=29_000) == 21_500  # no new beat: still dated by the best sighting
    assert seen(uptime=30_000, now=31_100) == 31_100
    assert seen(uptime=40_000, now=45_000) == 41_100  # a late sighting still dates the beat closely
    # A worker that stops being listed is forgotten.
    assert describe_workers("q", {"workers": {}}, starts, 40_000) == []
    assert starts == {}


async def test_throughput_buckets_and_dead_letters_order() -> None:
    queue = MemoryQueue(name="insights")
    await queue.connect()
    now = 100 * MINUTE_MS + 30_000  # half way through minute 100
    finished = [
        ("a", Status.COMPLETE, now - 1_000),  # this minute
        ("b", Status.COMPLETE, now - MINUTE_MS),  # the minute before
        ("c", Status.FAILED, now - 2 * MINUTE_MS),
        ("d", Status.FAILED, now - 31 * MINUTE_MS),  # too old for 30 minutes
        ("e", Status.ABORTED, now - 5_000),
    ]
    for key, status, completed in finished:
        job = Job("task", queue=queue, key=key)
        await queue.enqueue(job)
        await queue.finish(job, status)
        await queue.update(job, completed=completed)

    throughput = await collect_throughput(queue, 30, now_ms=now)
    assert throughput.start == 71 * MINUTE_MS
    assert throughput.complete[-1] == 1 and throughput.complete[-2] == 1
    assert throughput.failed[-3] == 1
    assert sum(throughput.complete) == 2 and sum(throughput.failed) == 1

    dead = await collect_dead_letters(queue, [Status.FAILED, Status.ABORTED], limit=2)
    assert [job.key for job in dead.jobs] == ["e", "c"]  # newest first, capped
    assert dead.total == 3
    await queue.disconnect()
