"""The ``workers`` click group, as a module-level object for sphinx-click (``docs/cli.rst``)."""

from litestar_saq.cli import build_cli_app

workers = build_cli_app()
