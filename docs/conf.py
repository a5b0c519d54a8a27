"""Sphinx configuration: ``bash scripts/build-docs`` builds the HTML with warnings as errors."""

from __future__ import annotations

import sys
from importlib.metadata import version as package_version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # docs.examples and docs._cli import from the repository root

project = "litestar-saq"
author = "litestar-saq contributors"
copyright = "litestar-saq contributors"
release = package_version("litestar-saq")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_click",
]

exclude_patterns = ["_build", "examples", "**/__pycache__"]
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = "litestar-saq"
html_theme_options = {"description": "SAQ background jobs for Litestar", "fixed_sidebar": True}
html_static_path: list[str] = []
