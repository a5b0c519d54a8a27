"""Resolve dotted paths such as ``"app.tasks.send_email"`` to the objects they name."""

from __future__ import annotations

import importlib
from typing import Any

from litestar_saq.exceptions import TaskImportError

__all__ = ("callable_name", "import_string")


def import_string(dotted_path: str, *, what: str) -> Any:
    """Import ``module.attribute`` and return the attribute.

    Args:
        dotted_path: ``"package.module.attribute"``; nested attributes (``"module.Class.method"``) work.
        what: who asked, for the error message, e.g. ``"queue 'default': tasks"``.

    Raises:
        TaskImportError: naming the path, the module that failed and why, or the missing attribute.
    """
    if not isinstance(dotted_path, str) or "." not in dotted_path.strip(". "):
        raise TaskImportError(
            f"{what}: {dotted_path!r} is not a dotted path; give 'package.module.function' or the "
            "function itself"
        )
    parts = dotted_path.split(".")
    # Import the longest prefix that is a module, then walk attributes; this handles "mod.Class.attr".
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" means try a shorter one; a missing import *inside*
            # the module is the user's real error and must be reported as such.
            if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue
            raise TaskImportError(
                f"{what}: importing module {module_name!r} for {dotted_path!r} failed: "
                f"{type(exc).__name__}: {exc}. Fix that import or the path."
            ) from exc
        except Exception as exc:
            raise TaskImportError(
                f"{what}: importing module {module_name!r} for {dotted_path!r} failed: "
                f"{type(exc).__name__}: {exc}. Fix the error in that module."
            ) from exc
        target: Any = module
        for depth, attribute in enumerate(parts[split:], start=split):
            try:
                target = getattr(target, attribute)
            except AttributeError:
                owner = ".".join(parts[:depth])
                raise TaskImportError(
                    f"{what}: {dotted_path!r}: module {owner!r} has no attribute {attribute!r}. "
                    "Check the spelling or define it there."
                ) from None
        return target
    raise TaskImportError(
        f"{what}: {dotted_path!r}: no module named {parts[0]!r} could be imported. Check the path "
        "and that the package is installed or on sys.path."
    )


def callable_name(function: Any) -> str:
    """The name to show for a task given as a function or a dotted path."""
    if isinstance(function, str):
        return function
    return str(getattr(function, "__qualname__", None) or getattr(function, "__name__", repr(function)))
