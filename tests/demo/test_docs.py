"""docs/api.md runs: its ```python blocks execute in order, in one namespace, in a temporary directory; the
other guides name only commands and files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import simcert.cli as cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def test_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocks = _blocks(DOCS / "api.md", "python")
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"docs/api.md block {i + 1} failed: {type(exc).__name__}: {exc}\n{code}") from exc
    assert (tmp_path / "int8.html").is_file()


def test_guides_exist_and_link_each_other() -> None:
    for name in ("getting-started.md", "concepts.md", "api.md", "reproduce.md", "cli.md", "certificate.md"):
        assert (DOCS / name).is_file(), name
    gs = (DOCS / "getting-started.md").read_text()
    for link in ("concepts.md", "cli.md", "api.md", "certificate.md"):
        assert f"]({link})" in gs


def test_guide_commands_are_real_cli_options() -> None:
    """Every `simcert CMD --option` in the guides' shell blocks is an option of that command."""
    commands = {name: cmd for name, cmd in cli.cli.commands.items()}
    for name in ("getting-started.md", "concepts.md", "reproduce.md"):
        for block in _blocks(DOCS / name, "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                m = re.search(r"\bsimcert (\w+)(.*)", line)
                if not m:
                    continue
                cmd = commands.get(m.group(1))
                assert cmd is not None, (name, line)
                known = {o for p in cmd.params for o in getattr(p, "opts", [])} | {"--help"}
                for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", m.group(2)):
                    assert opt in known, (name, line, opt)


def test_concepts_explain_the_confidence() -> None:
    text = (DOCS / "concepts.md").read_text()
    for term in ("twin", "region", "property", "proof", "certificate", "confidence", "counterexample"):
        assert term in text.lower(), term
    assert "does not" in text or "not a proof" in text
