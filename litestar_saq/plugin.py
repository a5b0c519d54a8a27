"""``SAQPlugin``: wires queues, workers and the dashboard into a Litestar app."""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from litestar.di import Provide
from litestar.plugins import CLIPlugin, InitPlugin

from litestar_saq.queues import TaskQueueRegistry, TaskQueues, queue_from_config
from litestar_saq.tracing import instrument_queue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from click import Group
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from saq.queue import Queue

    from litestar_saq.config import QueueConfig, SAQConfig
    from litestar_saq.worker import PluginWorker

__all__ = ("SAQPlugin",)

logger = logging.getLogger("litestar_saq")

CHILD_PROCESS_ENV = "LITESTAR_SAQ_WORKER_CHILD"
"""Set in worker child processes, so the app they load does not start in-process workers again."""


class SAQPlugin(InitPlugin, CLIPlugin):
    """Adds SAQ queues to a Litestar app: ``TaskQueues`` for handlers, workers, CLI and dashboard."""

    __slots__ = ("_config", "_task_queues", "_worker_tasks", "_workers")

    def __init__(self, config: SAQConfig) -> None:
        self._config = config
        self._task_queues = TaskQueueRegistry()
        self._workers: list[PluginWorker] = []
        self._worker_tasks: list[asyncio.Task[None]] = []

    @property
    def config(self) -> SAQConfig:
        """The plugin's configuration."""
        return self._config

    @property
    def task_queues(self) -> TaskQueueRegistry:
        """The queues of this process, connected while the app runs."""
        return self._task_queues

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Check every task and hook path now, and register DI, the lifespan and the dashboard."""
        for queue_config in self._config.queue_configs:
            # Import every dotted path now: a typo fails the app's start, not the first job.
            queue_config.resolve_tasks()
            queue_config.resolve_cron_jobs()
            for hook_field in ("startup", "shutdown", "before_process", "after_process"):
                queue_config.resolve_hooks(hook_field)
        app_config.dependencies[self._config.queues_dependency_key] = Provide(
            self._provide_task_queues, sync_to_thread=False
        )
        app_config.signature_namespace.update(
            {"TaskQueues": TaskQueues, "TaskQueueRegistry": TaskQueueRegistry}
        )
        if self._config.web_enabled:
            from litestar_saq.web import build_web_router

            app_config.route_handlers.append(build_web_router(self))
        app_config.lifespan.append(self._lifespan)
        # Workers start after the app's own on_startup hooks have filled app.state (Litestar runs
        # on_startup hooks after all lifespans are entered).
        app_config.on_startup.append(self._start_in_process_workers)
        return app_config

    def on_cli_init(self, cli: Group) -> None:
        """Add the ``workers`` command group to the Litestar CLI."""
        from litestar_saq.cli import build_cli_app

        cli.add_command(build_cli_app())

    @contextmanager
    def server_lifespan(self, app: Litestar) -> Iterator[None]:
        """With ``use_server_lifespan``, run the ``separate_process`` queues' workers beside the server."""
        if not self._config.use_server_lifespan or os.environ.get(CHILD_PROCESS_ENV):
            yield
            return
        from litestar_saq.supervisor import supervise_in_background

        with supervise_in_background(app, self):
            yield

    def _provide_task_queues(self) -> TaskQueueRegistry:
        return self._task_queues

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            queues: dict[str, Queue] = {}
            for queue_config in self._config.queue_configs:
                queue, owned = queue_from_config(queue_config, self._config)
                instrument_queue(queue, self._config)
                if owned:
                    await queue.connect()
                    stack.push_async_callback(queue.disconnect)
                queues[queue_config.name] = queue
            self._task_queues._replace(queues)
            stack.callback(self._task_queues._replace, {})
            try:
                yield
            finally:
                await self._stop_in_process_workers()

    def queues_to_run_here(self) -> list[QueueConfig]:
        """The queues whose workers run inside this app process."""
        if os.environ.get(CHILD_PROCESS_ENV):
            return []
        return [
            queue_config for queue_config in self._config.queue_configs if not queue_config.separate_process
        ]

    async def _start_in_process_workers(self, app: Litestar) -> None:
        from litestar_saq.worker import build_worker

        for queue_config in self.queues_to_run_here():
            worker = build_worker(queue_config, self._task_queues.get(queue_config.name), app)
            self._workers.append(worker)
            task = asyncio.create_task(worker.start(), name=f"saq-worker-{queue_config.name}")
            task.add_done_callback(_log_worker_exit)
            self._worker_tasks.append(task)
            logger.info("queue %r: worker started in the app process", queue_config.name)

    async def _stop_in_process_workers(self) -> None:
        workers, tasks = self._workers, self._worker_tasks
        self._workers, self._worker_tasks = [], []
        await asyncio.gather(*(worker.stop() for worker in workers))
        if tasks:
            await asyncio.wait(tasks)


def _log_worker_exit(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("worker %s stopped with an error", task.get_name(), exc_info=task.exception())
