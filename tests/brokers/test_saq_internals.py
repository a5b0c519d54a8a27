"""SAQ's internals that our Redis queue relies on still exist: fails loudly, naming what SAQ changed."""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
from packaging.specifiers import SpecifierSet
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue as SAQRedisQueue

from litestar_saq.backends.redis_saq_adapter import SAQ_INTERNALS, SAQ_VERSIONS, is_wrong_queue_error


def test_the_installed_saq_is_one_the_adapter_is_pinned_to() -> None:
    installed = importlib.metadata.version("saq")
    assert installed in SpecifierSet(SAQ_VERSIONS), (
        f"saq {installed} is installed but litestar_saq/backends/redis_saq_adapter.py is pinned to "
        f"saq{SAQ_VERSIONS}: re-check every name in SAQ_INTERNALS against the new SAQ, then move the pin"
    )


@pytest.mark.parametrize("name", sorted(SAQ_INTERNALS))
def test_every_saq_internal_we_use_exists_with_the_expected_kind(name: str) -> None:
    kind = SAQ_INTERNALS[name]
    queue = SAQRedisQueue(Redis(), name="internals")  # no connection is made
    where = f"saq.queue.redis.RedisQueue.{name}"
    fix = "update litestar_saq/backends/redis_saq_adapter.py"
    if kind == "coroutine method":
        member = inspect.getattr_static(SAQRedisQueue, name, None)
        assert member is not None, (
            f"SAQ no longer has {where}; update litestar_saq/backends/redis_saq_adapter.py"
        )
        assert inspect.iscoroutinefunction(member), f"{where} is no longer a coroutine method: {member!r}"
    else:
        assert name in vars(queue), f"SAQ's RedisQueue.__init__ no longer sets {name!r}; {fix}"


def test_saq_still_names_a_job_of_another_queue_the_way_the_adapter_expects() -> None:
    queue = SAQRedisQueue(Redis(), name="internals")
    with pytest.raises(ValueError) as excinfo:
        queue.deserialize({"function": "f", "queue": "another-queue"})
    assert is_wrong_queue_error(excinfo.value), (
        f"SAQ's message for another queue's job changed to {excinfo.value}; update WRONG_QUEUE_ERROR"
    )
    assert not is_wrong_queue_error(ValueError("Expecting value: line 1 column 1"))
