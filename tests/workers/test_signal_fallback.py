"""Signal handling where the event loop has no ``add_signal_handler`` (e.g. Windows' proactor loop)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from litestar_saq._child import install_signal_handlers


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
async def test_handlers_fall_back_to_signal_signal_and_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    def no_signal_handlers(*args: object) -> None:
        raise NotImplementedError

    monkeypatch.setattr(loop, "add_signal_handler", no_signal_handlers)
    previous = signal.getsignal(signal.SIGTERM)
    received: asyncio.Queue[int] = asyncio.Queue()
    restore = install_signal_handlers(loop, received.put_nowait)
    try:
        assert signal.getsignal(signal.SIGTERM) is not previous
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(received.get(), timeout=5) == signal.SIGTERM
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_outside_the_main_thread_signals_are_left_to_the_caller() -> None:
    before = signal.getsignal(signal.SIGTERM)
    loop = asyncio.new_event_loop()
    outcome: list[object] = []
    try:
        thread = threading.Thread(target=lambda: outcome.append(install_signal_handlers(loop, print)))
        thread.start()
        thread.join()
    finally:
        loop.close()
    [restore] = outcome
    assert callable(restore)
    assert signal.getsignal(signal.SIGTERM) is before
