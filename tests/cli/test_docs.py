"""docs/cli.md is generated from the CLI; README and .ci/run agree on the test command."""

from __future__ import annotations

import re
from pathlib import Path

import simcert.cli as cli

ROOT = Path(__file__).resolve().parents[2]


def test_cli_docs_in_sync() -> None:
    expected = cli.render_cli_docs()
    actual = (ROOT / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run python -c 'import simcert.cli as c; c.write_cli_docs()'"
    for name in cli.COMMAND_ORDER:
        assert f"## simcert {name}\n" in actual
    assert "--acas-prop N" in actual and "--delta-top1 D" in actual


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    return [line for line in blocks[0].splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_the_two_commands() -> None:
    demo, tests = _readme_commands()[:2]
    assert demo.endswith("&& simcert demo") and "pip install torch==2.13.0 -e ." in demo
    assert "pip install torch==2.13.0 -e '.[test]'" in tests
    assert tests.split(" && ")[-1] == 'python -m pytest -x -q -n 2 -m "not slow"'


def test_ci_runs_the_readme_test_command() -> None:
    test_cmd = _readme_commands()[1].split(" && ")[-1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in ci
    assert test_cmd in ci.splitlines()[-1] or any(line.strip() == test_cmd for line in ci.splitlines())
    assert "pip install torch==2.13.0" in ci and "pip install -e '.[test]'" in ci
