"""Sphinx configuration: ``bash scripts/build-docs`` builds the HTML with warnings as errors."""

from __future__ import annotations

import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # docs.examples and docs._cli import from the repository root

project = "litestar-saq"
author = "litestar-saq contributors"
copyright = "litestar-saq contributors"
release = package_version("litestar-saq")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx_click",
]

exclude_patterns = ["_build", "examples", "**/__pycache__"]
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = "litestar-saq"
html_theme_options = {"description": "SAQ background jobs for Litestar", "fixed_sidebar": True}
html_static_path: list[str] = []


# Google-style sections (Args:, Returns:, Raises:) in functions and classes only: napoleon would read
# a field docstring such as "OpenTelemetry spans: ``None`` when…" as "type: description".
_NAPOLEON = NapoleonConfig(napoleon_google_docstring=True, napoleon_numpy_docstring=False)


def _google_docstrings(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what in ("attribute", "data", "property"):
        return
    lines[:] = GoogleDocstring(lines, _NAPOLEON, app, what, name, obj, options).lines()


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", _google_docstrings)
