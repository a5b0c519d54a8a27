"""Upstream litestar-saq's ``litestar_saq.typing``: whether the optional packages are installed."""

from __future__ import annotations

from importlib.util import find_spec

from litestar_saq.compat import OPENTELEMETRY_INSTALLED

__all__ = ("OPENTELEMETRY_INSTALLED", "STRUCTLOG_INSTALLED")

STRUCTLOG_INSTALLED: bool = find_spec("structlog") is not None
"""Whether ``structlog`` can be imported."""
