"""``@task`` handles on every backend: enqueue, apply, options, names, and a handle that finds no queue."""

from __future__ import annotations

import pytest
from saq.job import Status

from litestar_saq import AsyncTaskHandle, QueueConfig, SAQConfig, SAQPlugin, task
from litestar_saq.exceptions import SAQConfigError, TaskNotEnqueueableError
from litestar_saq.testing import drain, running_app
from tests.tasks import sample_tasks
from tests.tasks.conftest import MakeApp
from tests.tasks.sample_tasks import add, greet, plain_echo


async def test_enqueue_apply_and_enqueue_by_name(make_app: MakeApp) -> None:
    app = make_app(tasks=[add, greet, "tests.tasks.sample_tasks.plain_echo", ("echo2", plain_echo)])
    async with running_app(app) as client:
        assert client is not None
        job = await add.enqueue(a=2, b=3)
        assert job.function == "add"
        assert await add.apply(a=40, b=2) == 42
        assert await greet.apply(name="ada") == "hello ada"
        task_queues = app.plugins.get(SAQPlugin).task_queues
        queue = task_queues.get(job.queue.name if job.queue else "")
        by_name = await queue.enqueue("tests.tasks.greet", name="bob")  # the handle's name= is SAQ's
        assert by_name is not None
        assert await queue.apply("plain_echo", value="dotted") == "dotted"
        assert await queue.apply("echo2", value="pair") == "pair"
        await drain(app)
        await job.refresh()
        await by_name.refresh()
        assert (job.status, job.result) == (Status.COMPLETE, 5)
        assert by_name.result == "hello bob"


async def test_with_options_win_over_task_options(make_app: MakeApp) -> None:
    app = make_app(tasks=[greet])
    async with running_app(app):
        plain = await greet.enqueue(name="a")
        assert (plain.timeout, plain.retries, plain.ttl) == (30, 2, 120)  # @task(...)
        bound = greet.with_options(timeout=5, key="greet-b").with_options(retries=4)
        job = await bound.enqueue(name="b")
        assert (job.key, job.timeout, job.retries, job.ttl) == ("greet-b", 5, 4, 120)
        again = await bound.enqueue(name="b")  # same key while queued: the job already there
        assert again.key == "greet-b"
        assert await greet.with_options(timeout=10).apply(name="c") == "hello c"
        await drain(app)


async def test_a_handle_is_still_the_function() -> None:
    assert isinstance(add, AsyncTaskHandle)
    assert await add({}, a=1, b=2) == 3
    assert sample_tasks.blocking_add({}, a=1, b=2)["sum"] == 3
    assert add.__name__ == "add" and add.name == "add"
    assert greet.name == "tests.tasks.greet" and greet.__qualname__ == "tests.tasks.greet"
    assert repr(greet) == "<task 'tests.tasks.greet'>"


async def test_enqueue_without_a_started_app_names_the_task() -> None:
    with pytest.raises(TaskNotEnqueueableError, match=r"task 'add'.*no app in this process has started"):
        await add.enqueue(a=1)


async def test_a_handle_listed_nowhere_says_where_to_list_it(make_app: MakeApp) -> None:
    app = make_app(tasks=[greet])
    async with running_app(app):
        with pytest.raises(
            TaskNotEnqueueableError, match=r"task 'add' is listed in no queue.*QueueConfig\(tasks="
        ):
            await add.enqueue(a=1)


async def test_positional_arguments_are_refused(make_app: MakeApp) -> None:
    @task
    async def positional(ctx: object, x: int) -> int:
        return x

    app = make_app(tasks=[positional])
    async with running_app(app):
        with pytest.raises(TaskNotEnqueueableError, match="passed by name"):
            await positional.enqueue(1)
        assert await positional.apply(x=7) == 7


async def test_two_queues_listing_a_handle_need_its_queue_name(queue_name: str) -> None:
    @task
    async def shared(ctx: object) -> str:
        return "ran"

    pinned = task(name="pinned", queue=f"{queue_name}-b")(shared.function)
    config = SAQConfig(
        queue_configs=[
            QueueConfig(name=f"{queue_name}-a", dsn="memory://", separate_process=False, tasks=[shared]),
            QueueConfig(
                name=f"{queue_name}-b", dsn="memory://", separate_process=False, tasks=[shared, pinned]
            ),
        ]
    )
    from litestar import Litestar

    app = Litestar(plugins=[SAQPlugin(config)])
    async with running_app(app):
        with pytest.raises(TaskNotEnqueueableError, match=r"listed in queues .*-a', .*-b'.*@task\(queue="):
            await shared.enqueue()
        job = await pinned.enqueue()
        assert job.queue is not None and job.queue.name == f"{queue_name}-b"
        unlisted = task(name="unlisted", queue=f"{queue_name}-a")(shared.function)
        with pytest.raises(TaskNotEnqueueableError, match="does not list it"):
            await unlisted.enqueue()
        await drain(app)


def test_a_renamed_handle_pair_is_refused() -> None:
    with pytest.raises(SAQConfigError, match=r"renames a @task handle.*@task\(name='other'\)"):
        QueueConfig(dsn="memory://", separate_process=False, tasks=[("other", add)])


def test_an_unknown_task_setting_is_a_clear_error() -> None:
    from litestar_saq import task
    from litestar_saq.exceptions import TaskDefinitionError

    with pytest.raises(
        TaskDefinitionError, match="unknown setting\\(s\\) timout; it takes name, queue, timeout"
    ):
        task(timout=5)  # type: ignore[call-overload]
