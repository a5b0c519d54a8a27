"""``SAQPlugin``: wires queues, workers and the dashboard into a Litestar app."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from litestar.di import Provide
from litestar.plugins import CLIPlugin, InitPlugin

from litestar_saq.brokers import queue_from_config
from litestar_saq.cli import build_cli_app
from litestar_saq.compat import saq_signature_namespace
from litestar_saq.queues import TaskQueueRegistry, TaskQueues
from litestar_saq.runtime import SAQRuntime, is_worker_child, started_runtimes
from litestar_saq.server_lifespan import supervise_in_background
from litestar_saq.task_setup import configure_job_options, task_plans
from litestar_saq.tracing import instrument_queue
from litestar_saq.web import install_dashboard
from litestar_saq.worker_group import WorkerGroup

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from click import Group
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from saq.queue import Queue

    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("SAQPlugin",)

logger = logging.getLogger("litestar_saq")


class SAQPlugin(InitPlugin, CLIPlugin):
    """Adds SAQ queues to a Litestar app: ``TaskQueues`` for handlers, workers, CLI and dashboard."""

    __slots__ = ("_in_process_workers", "runtime")

    def __init__(self, config: SAQConfig) -> None:
        self.runtime = SAQRuntime(config, TaskQueueRegistry())
        """The config and this process's queues, as the CLI, dashboard and helpers find them."""
        self._in_process_workers: WorkerGroup | None = None

    @property
    def config(self) -> SAQConfig:
        """The plugin's configuration."""
        return self.runtime.config

    @property
    def task_queues(self) -> TaskQueueRegistry:
        """The queues of this process, connected while the app runs."""
        return self.runtime.task_queues

    def get_queues(self) -> TaskQueueRegistry:
        """Upstream's name for :attr:`task_queues` (the queues exist while the app runs)."""
        return self.task_queues

    def get_queue(self, name: str) -> Queue:
        """Upstream's ``plugin.get_queue(name)``: ``task_queues.get(name)``."""
        return self.task_queues.get(name)

    def queues_to_run_here(self) -> list[QueueConfig]:
        """The queues whose workers run inside this app process."""
        return self.runtime.queues_to_run_here()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Check every task and hook path now, and register DI, the lifespan and the dashboard."""
        for queue_config in self.config.queue_configs:
            # Import every dotted path now: a typo fails the app's start, not the first job.
            queue_config.resolve_tasks()
            queue_config.resolve_cron_jobs()
            for hook_field in ("startup", "shutdown", "before_process", "after_process"):
                queue_config.resolve_hooks(hook_field)
            task_plans(queue_config, self.config)  # a dependency nobody provides fails here
        app_config.dependencies[self.config.queues_dependency_key] = Provide(
            self._provide_task_queues, sync_to_thread=False
        )
        # SAQ's types too (Queue, Job, QueueInfo…): handlers may annotate with them under
        # `from __future__ import annotations`. A name the app already defines keeps its meaning.
        namespace = {**saq_signature_namespace(), "TaskQueues": TaskQueues}
        namespace["TaskQueueRegistry"] = TaskQueueRegistry
        for name, value in namespace.items():
            app_config.signature_namespace.setdefault(name, value)
        app_config.lifespan.append(self._lifespan)
        if self.config.web_enabled:
            # After the queues' lifespan: the dashboard's live streams end before the queues close.
            install_dashboard(app_config, self.runtime)
        # Workers start after the app's own on_startup hooks have filled app.state (Litestar runs
        # on_startup hooks after all lifespans are entered).
        app_config.on_startup.append(self._start_in_process_workers)
        return app_config

    def on_cli_init(self, cli: Group) -> None:
        """Add the ``workers`` command group to the Litestar CLI."""
        cli.add_command(build_cli_app())

    @contextmanager
    def server_lifespan(self, app: Litestar) -> Iterator[None]:
        """With ``use_server_lifespan``, run the ``separate_process`` queues' workers beside the server."""
        if not self.config.use_server_lifespan or is_worker_child():
            yield
            return
        with supervise_in_background(self.config, debug=app.debug):
            yield

    def _provide_task_queues(self) -> TaskQueueRegistry:
        return self.task_queues

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            queues: dict[str, Queue] = {}
            for queue_config in self.config.queue_configs:
                queue, owned = queue_from_config(queue_config, self.config)
                instrument_queue(queue, self.config)
                configure_job_options(queue, queue_config, task_plans(queue_config, self.config))
                if owned:
                    await queue.connect()
                    stack.push_async_callback(queue.disconnect)
                queues[queue_config.name] = queue
            self.task_queues._replace(queues)
            stack.callback(self.task_queues._replace, {})
            self.runtime.index_tasks()
            started_runtimes.add(self.runtime)  # task handles enqueue through it
            stack.callback(started_runtimes.remove, self.runtime)
            try:
                yield
            finally:
                await self._stop_in_process_workers()

    async def _start_in_process_workers(self, app: Litestar) -> None:
        names = [queue_config.name for queue_config in self.queues_to_run_here()]
        if names:
            self._in_process_workers = WorkerGroup(app, self.runtime, names, where="the app process")
            self._in_process_workers.start()

    async def _stop_in_process_workers(self) -> None:
        workers, self._in_process_workers = self._in_process_workers, None
        if workers is not None:
            await workers.stop()
