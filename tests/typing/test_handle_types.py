"""mypy (strict) checks task handles against the installed package: wrong kwarg names or types are type
errors, right calls are not. The sample is ``handles_sample.py``; its expected errors are marked per line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import litestar_saq

SAMPLE = Path(__file__).with_name("handles_sample.py")


def test_the_package_ships_its_type_marker() -> None:
    assert (Path(litestar_saq.__file__).parent / "py.typed").is_file()


@pytest.mark.timeout(300)
def test_mypy_checks_handle_calls_against_the_task_signature(tmp_path: Path) -> None:
    sample = tmp_path / "handles_sample.py"
    shutil.copy(SAMPLE, sample)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), sample.name],
        cwd=tmp_path,  # outside the repository: litestar_saq is found as installed
        capture_output=True,
        text=True,
        timeout=280,
    )
    found = {
        (int(match.group(1)), match.group(2))
        for match in re.finditer(r"handles_sample\.py:(\d+): error: .*\[([a-z-]+)\]$", result.stdout, re.M)
    }
    expected = {
        (number, line.rsplit("# error: ", 1)[1].strip())
        for number, line in enumerate(SAMPLE.read_text().splitlines(), start=1)
        if "# error: " in line
    }
    assert found == expected, result.stdout + result.stderr
