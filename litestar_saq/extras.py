"""Is an optional dependency installed? Checked without importing it."""

from __future__ import annotations

import importlib.util

from litestar_saq.exceptions import MissingExtraError

__all__ = ("prometheus_installed", "require_prometheus")


def prometheus_installed() -> bool:
    """True when ``prometheus-client`` can be imported (it is not imported here)."""
    return importlib.util.find_spec("prometheus_client") is not None


def require_prometheus() -> None:
    """Raise ``MissingExtraError`` naming the ``prometheus`` extra when ``prometheus-client`` is missing."""
    if not prometheus_installed():
        raise MissingExtraError(
            "prometheus-client", install="litestar-saq[prometheus]", needed_for="Prometheus metrics"
        )
