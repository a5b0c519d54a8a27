"""Checked by mypy in ``test_handle_types.py``: each line marked with an error code must be a type error
with that code, and no other line may be one."""

from __future__ import annotations

from litestar import Response

from litestar_saq import AsyncTaskHandle, BoundTask, SyncTaskHandle, TaskContext, injected, task


class Mailer:
    def send(self, to: str) -> None: ...


@task(timeout=60)
async def send_email(
    ctx: TaskContext, *, recipient: str, retries_left: int = 3, mailer: Mailer = injected()
) -> bool:
    return True


@task
def resize(ctx: TaskContext, *, path: str, width: int) -> str:
    return path


async def callers() -> None:
    handle: AsyncTaskHandle[..., bool] = send_email
    sync_handle: SyncTaskHandle[..., str] = resize
    job = await send_email.enqueue(recipient="ada@example.com")
    print(job.key, handle, sync_handle)
    await send_email.enqueue(recipient="ada@example.com", retries_left=1)
    ok: bool = await send_email.apply(recipient="ada@example.com")
    path: str = await resize.apply(path="a.png", width=10)
    bound: BoundTask[..., bool] = send_email.with_options(key="k", timeout=5, scheduled=0)
    await bound.enqueue(recipient="x")
    Response(None, background=send_email.after_response(recipient="x"))
    await send_email({}, recipient="direct")
    print(ok, path)

    await send_email.enqueue(recipiant="typo")  # error: call-arg
    await send_email.enqueue(recipient=42)  # error: arg-type
    await send_email.enqueue()  # error: call-arg
    await resize.apply(path="a.png", width="wide")  # error: arg-type
    wrong: str = await send_email.apply(recipient="x")  # error: assignment
    await send_email.with_options(timeout="soon").enqueue(recipient="x")  # error: arg-type
    send_email.after_response(recipient=None)  # error: arg-type
    print(wrong)
