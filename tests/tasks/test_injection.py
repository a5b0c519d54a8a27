"""Dependency injection in tasks, on every backend: providers of every kind and level, their cleanup
whatever the job's outcome, and the errors of a dependency nobody provides or a job that passes one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.datastructures import State
from saq.job import Status
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from litestar_saq import QueueConfig, SAQConfig, SAQPlugin, TaskContext, injected, task
from litestar_saq.exceptions import SAQConfigError
from litestar_saq.testing import drain, running_app, wait_for_job
from tests.support.brokers import DATABASE_URL
from tests.support.poll import wait_until
from tests.tasks.conftest import MakeApp
from tests.tasks.sample_tasks import (
    DEPENDENCIES,
    Mailer,
    Trace,
    default_marker,
    queue_level_greeting,
    send_mail,
    task_greeting,
    use_resources,
    which_greeting,
)


async def open_state(app: Litestar) -> None:
    app.state.mailer = Mailer()
    app.state.trace = Trace()


def events_of(app: Litestar) -> list[str]:
    trace: Trace = app.state.trace
    return trace.events


async def test_providers_get_state_job_queue_and_each_other(make_app: MakeApp, queue_name: str) -> None:
    app = make_app(tasks=[send_mail], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        assert await send_mail.apply(to="ada@example.com") == f"{queue_name}:send_mail -> ada@example.com"
        assert app.state.mailer.sent == ["ada@example.com"]


async def test_generator_providers_are_closed_newest_first_after_success(
    make_app: MakeApp, queue_name: str
) -> None:
    app = make_app(tasks=[use_resources], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        assert await use_resources.apply() == ["sync-resource", "async-resource"]
        assert events_of(app) == [
            "sync open",
            f"async open for {queue_name}:use_resources",
            "async close",
            "sync close",
        ]


async def test_generator_providers_see_the_jobs_exception(make_app: MakeApp) -> None:
    app = make_app(tasks=[use_resources], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        job = await use_resources.enqueue(fail=True)
        job = await wait_for_job(job.get_queue(), None, job.key)
        assert job.status == Status.FAILED
        assert "task failed on purpose" in (job.error or "")
        assert events_of(app)[-2:] == [
            "async saw ValueError: task failed on purpose",
            "sync saw ValueError",
        ]


async def test_generator_providers_are_closed_after_a_timeout(make_app: MakeApp) -> None:
    app = make_app(tasks=[use_resources], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        job = await use_resources.with_options(timeout=1).enqueue(sleep=30)
        job = await wait_for_job(job.get_queue(), None, job.key, timeout=15)
        assert job.status == Status.FAILED
        assert events_of(app)[-2:] == ["async saw CancelledError: ", "sync saw CancelledError"]


async def test_generator_providers_are_closed_after_an_abort(make_app: MakeApp) -> None:
    app = make_app(tasks=[use_resources], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        job = await use_resources.enqueue(sleep=30)
        await wait_until(lambda: len(events_of(app)) == 2, timeout=10, what="the job to open its resources")
        await job.abort("stop it")
        job = await wait_for_job(job.get_queue(), None, job.key, timeout=15)
        assert job.status == Status.ABORTED
        await wait_until(lambda: len(events_of(app)) == 4, timeout=10, what="the resources to be closed")
        assert events_of(app)[-2:] == ["async saw CancelledError: ", "sync saw CancelledError"]


async def test_inner_levels_win(make_app: MakeApp) -> None:
    app = make_app(tasks=[which_greeting, task_greeting], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        assert await which_greeting.apply() == "app"
        assert await task_greeting.apply() == "task"
    app = make_app(
        tasks=[which_greeting, task_greeting],
        dependencies=DEPENDENCIES,
        queue_dependencies={"greeting": queue_level_greeting},
        on_startup=[open_state],
        name=f"greetings-{uuid.uuid4().hex[:8]}",
    )
    async with running_app(app):
        assert await which_greeting.apply() == "queue"
        assert await task_greeting.apply() == "task"


async def test_an_injected_default_is_used_without_a_provider(make_app: MakeApp) -> None:
    app = make_app(tasks=[default_marker])
    async with running_app(app):
        assert await default_marker.apply() == "eu"


async def test_a_job_may_not_pass_an_injected_parameter(make_app: MakeApp) -> None:
    app = make_app(tasks=[send_mail], dependencies=DEPENDENCIES, on_startup=[open_state])
    async with running_app(app):
        with pytest.raises(TypeError, match=r"task 'send_mail' gets mailer injected by the worker"):
            await send_mail.enqueue(to="x", mailer=Mailer())
        queue = app.plugins.get(SAQPlugin).task_queues.get(
            app.plugins.get(SAQPlugin).config.queue_configs[0].name
        )
        with pytest.raises(TypeError, match=r"gets mailer, sender injected"):
            await queue.enqueue("send_mail", to="x", mailer=1, sender=2)


def test_a_dependency_nobody_provides_fails_when_the_app_is_built() -> None:
    config = SAQConfig(
        queue_configs=[QueueConfig(dsn="memory://", separate_process=False, tasks=[send_mail])]
    )
    with pytest.raises(
        SAQConfigError, match=r"queue 'default': task 'send_mail' asks for dependency 'mailer'"
    ):
        Litestar(plugins=[SAQPlugin(config)])


def test_a_provider_asking_for_an_unknown_name_fails_when_the_app_is_built() -> None:
    def provide_mailer(smtp_host: str) -> Mailer:
        return Mailer()

    config = SAQConfig(
        queue_configs=[QueueConfig(dsn="memory://", separate_process=False, tasks=[send_mail])],
        dependencies={**DEPENDENCIES, "mailer": provide_mailer},
    )
    with pytest.raises(SAQConfigError, match=r"dependency 'mailer' asks for 'smtp_host', which is neither"):
        Litestar(plugins=[SAQPlugin(config)])


def test_providers_asking_for_each_other_fail_when_the_app_is_built() -> None:
    def provide_mailer(sender: str) -> Mailer:
        return Mailer()

    def provide_sender(mailer: Mailer) -> str:
        return ""

    config = SAQConfig(
        queue_configs=[QueueConfig(dsn="memory://", separate_process=False, tasks=[send_mail])],
        dependencies={"mailer": provide_mailer, "sender": provide_sender},
    )
    with pytest.raises(SAQConfigError, match=r"cycle: mailer -> sender -> mailer"):
        Litestar(plugins=[SAQPlugin(config)])


# --- an SQLAlchemy session that commits when the job succeeds and rolls back when it raises -------


async def provide_session(state: State) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(state.engine) as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            raise
        else:
            await session.commit()


@task
async def record_signup(
    ctx: TaskContext, *, table: str, email: str, fail: bool = False, session: AsyncSession = injected()
) -> None:
    await session.execute(text(f'INSERT INTO "{table}" (email) VALUES (:email)'), {"email": email})
    if fail:
        raise RuntimeError("the job failed after writing")


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(DATABASE_URL.replace("postgresql://", "postgresql+asyncpg://"))
    yield engine
    await engine.dispose()


async def test_an_sqlalchemy_session_commits_on_success_and_rolls_back_on_failure(
    make_app: MakeApp, engine: AsyncEngine
) -> None:
    table = f"signups_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE TABLE "{table}" (email TEXT)'))

    async def share_engine(app: Litestar) -> None:
        app.state.engine = engine

    app = make_app(
        tasks=[record_signup], dependencies={"session": provide_session}, on_startup=[share_engine]
    )
    try:
        async with running_app(app):
            await record_signup.apply(table=table, email="kept@example.com")
            failed = await record_signup.enqueue(table=table, email="dropped@example.com", fail=True)
            failed = await wait_for_job(failed.get_queue(), None, failed.key)
            assert failed.status == Status.FAILED
            await drain(app)
        async with engine.connect() as connection:
            rows = (await connection.execute(text(f'SELECT email FROM "{table}"'))).scalars().all()
        assert rows == ["kept@example.com"]
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP TABLE "{table}"'))


async def test_providers_run_once_per_job(make_app: MakeApp) -> None:
    calls: list[Any] = []

    def provide_counter(job: Any) -> int:
        calls.append(job.key)
        return len(calls)

    def provide_doubled(counter: int) -> int:
        return counter * 2

    @task
    async def uses_both(ctx: TaskContext, *, counter: int = injected(), doubled: int = injected()) -> int:
        return counter + doubled

    app = make_app(tasks=[uses_both], dependencies={"counter": provide_counter, "doubled": provide_doubled})
    async with running_app(app):
        assert await uses_both.apply() == 3
        assert await uses_both.apply() == 6
    assert len(calls) == 2
