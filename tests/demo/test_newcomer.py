"""Issue 7 item 5, as a newcomer: the README opens with the two commands (install + demo, install + tests),
the files a fresh clone gets include everything the demo needs, and (slow, needs the network) the README's
commands work from a fresh copy in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_LINE_END = "&& simcert demo"
TEST_LINE_END = 'python -m pytest -x -q -n 2 -m "not slow"'


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)[0]
    return [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]


def clone_files() -> list[str]:
    """The files a clone of this working tree would have (tracked, plus new files that are not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def test_readme_opens_with_demo_then_tests() -> None:
    demo, tests = readme_commands()[:2]
    assert demo.startswith("python -m venv .venv && . .venv/bin/activate && pip install")
    assert demo.endswith(DEMO_LINE_END)
    assert tests.endswith(TEST_LINE_END) and "'.[test]'" in tests
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    assert demo in guide and tests in guide  # the guide shows the same two commands


def test_a_clone_has_what_the_demo_needs() -> None:
    files = set(clone_files())
    assert {"pyproject.toml", "README.md", "src/simcert/demo.py", "src/simcert/cli.py"} <= files
    assert {"src/simcert/data/demo_control.onnx", "src/simcert/data/demo_digits.onnx"} <= files
    # packaged: the data folder is package data, so a non-editable install has the models too
    assert '"data/*"' in (ROOT / "pyproject.toml").read_text()


def _online() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_fresh_copy_fresh_venv_runs_the_readme(tmp_path: Path) -> None:
    """Copy the clone's files, run the README's first line verbatim (fresh venv, install, demo), check the demo
    output, then the second line's install and this folder's tests inside the fresh environment."""
    if not _online():
        pytest.skip("no network: the README's install needs PyPI")
    repo = tmp_path / "simcert"
    for rel in clone_files():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    python = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    env["PATH"] = str(Path(python).parent) + os.pathsep + env["PATH"]
    demo, tests = readme_commands()[:2]

    proc = subprocess.run(["bash", "-c", demo], cwd=repo, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = repo / "simcert-demo"
    assert (out / "index.html").read_text().rstrip().endswith("</html>")
    certs = list(out.glob("*/*.cert.json"))
    assert len(certs) >= 13
    for p in certs:
        assert json.loads(p.read_text())["verdict"] in ("holds", "violated", "unknown")

    install = tests.rsplit(" && ", 1)[0]
    run_tests = f"{install} && python -m pytest -x -q -m 'not slow' tests/demo"
    proc = subprocess.run(["bash", "-c", run_tests], cwd=repo, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
