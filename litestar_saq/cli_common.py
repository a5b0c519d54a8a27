"""What every ``litestar workers`` command shares: the loaded app, its config, queue selection, errors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from litestar_saq._child import load_app
from litestar_saq.exceptions import SAQConfigError, WorkersCannotStartError
from litestar_saq.runtime import runtime_of

if TYPE_CHECKING:
    from litestar import Litestar

    from litestar_saq.config import QueueConfig, SAQConfig

__all__ = ("LazyApp", "config_of", "fail", "loaded_app", "quoted_names", "select_queues")


class LazyApp:
    """What ``main()`` puts in ``ctx.obj``: the app's import path, and the app loaded on first use."""

    def __init__(self, app_path: str) -> None:
        self.app_path = app_path
        self._app: Litestar | None = None

    @property
    def app(self) -> Litestar:
        if self._app is None:
            self._app = load_app(self.app_path)
        return self._app


def loaded_app(ctx: click.Context) -> tuple[Litestar, str | None]:
    """The app and its import path from the CLI's context object (the Litestar CLI's or ``main()``'s)."""
    env: Any = ctx.obj
    if callable(env) and not hasattr(env, "app"):
        env = ctx.obj = env()  # the Litestar CLI loads the app lazily, on first use
    try:
        app = env.app
    except WorkersCannotStartError as exc:
        fail(ctx, str(exc), 1)
    except AttributeError:
        fail(ctx, "no Litestar app was loaded; pass --app module:app or set LITESTAR_APP", 2)
    app_path = getattr(env, "app_path", None) or os.environ.get("LITESTAR_APP")
    return app, app_path


def config_of(ctx: click.Context, app: Litestar, app_path: str | None) -> SAQConfig:
    try:
        config = runtime_of(app).config
    except SAQConfigError:
        fail(
            ctx,
            f"the app {app_path or ''!s} has no SAQPlugin; add plugins=[SAQPlugin(SAQConfig(queue_configs="
            "[QueueConfig(name=..., dsn=...)]))] to Litestar(...)",
            1,
        )
    if not config.queue_configs:
        fail(
            ctx,
            f"the SAQPlugin of app {app_path or ''!s} has no queues; add QueueConfig(name=..., dsn=...) to "
            "SAQConfig.queue_configs",
            1,
        )
    return config


def select_queues(
    ctx: click.Context, config: SAQConfig, queues: str | None, option: str = "--queues"
) -> list[QueueConfig]:
    """The queues named in ``queues`` (comma-separated; default all); exit 2 naming an unknown one."""
    configured = list(config.queue_configs)
    if not queues:
        return configured
    names = [name.strip() for name in queues.split(",") if name.strip()]
    known = [queue_config.name for queue_config in configured]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        fail(
            ctx,
            f"{option}: unknown queue(s) {quoted_names(unknown) or repr(queues)}; "
            f"configured queues: {quoted_names(known)}",
            2,
        )
    return [queue_config for queue_config in configured if queue_config.name in names]


def quoted_names(names: Sequence[str]) -> str:
    """``'a', 'b'``: names as error messages show them."""
    return ", ".join(repr(name) for name in names)


def fail(ctx: click.Context, message: str, exit_code: int) -> NoReturn:
    """Print ``message`` as one line on stderr and exit: 2 for a wrong command line, 1 otherwise."""
    click.echo(f"Error: {message}", err=True)
    ctx.exit(exit_code)
