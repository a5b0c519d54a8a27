"""Every error litestar-saq raises on purpose derives from ``LitestarSaqError``.

Callers can catch ``LitestarSaqError`` for all of them, and the standard type as before (each class also
derives from it). Checked two ways: every exception class the package defines has the base, and no
``raise`` in the package names a standard exception class directly.
"""

from __future__ import annotations

import ast
import builtins
import inspect

import litestar_saq.exceptions
from litestar_saq.exceptions import LitestarSaqError
from tests.structure.test_import_graph import PACKAGE_DIR

ALLOWED_BUILTIN_RAISES = {
    ("litestar_saq/__init__.py", "AttributeError"),  # module __getattr__ must raise AttributeError
}


def test_every_exception_class_of_the_package_has_the_base() -> None:
    classes = [
        value
        for value in vars(litestar_saq.exceptions).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == "litestar_saq.exceptions"
    ]
    assert len(classes) > 10
    assert [cls.__name__ for cls in classes if not issubclass(cls, LitestarSaqError)] == []


def test_no_raise_names_a_standard_exception() -> None:
    standard = {
        name
        for name, value in vars(builtins).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value is not AssertionError  # invariants
    }
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = f"litestar_saq/{path.relative_to(PACKAGE_DIR).as_posix()}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            called = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = called.id if isinstance(called, ast.Name) else None
            if name in standard and (relative, name) not in ALLOWED_BUILTIN_RAISES:
                found.append(f"{relative}:{node.lineno} raises {name}")
    assert found == []
