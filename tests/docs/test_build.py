"""Build the documentation with warnings as errors, as ``scripts/build-docs`` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            "docs",
            str(tmp_path / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for page in ("index", "configuration", "cli", "web-ui"):
        assert (tmp_path / "html" / f"{page}.html").is_file()
    configuration = (tmp_path / "html" / "configuration.html").read_text()
    # Generated from the dataclasses' field docstrings, not retyped.
    assert "How many jobs one worker runs at the same time." in configuration
    cli = (tmp_path / "html" / "cli.html").read_text()
    assert "--process" in cli


def test_cli_commands_of_the_docs_run() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "litestar",
            "--app",
            "docs.examples.first_app:app",
            "workers",
            "status",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"name": "default"' in result.stdout
