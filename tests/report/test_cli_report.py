"""`simcert report CERT.json [--html OUT.html]`: terminal summary, HTML file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simcert.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_terminal_summary_when_piped(capsys, certs: dict[str, Path]) -> None:
    code, out, err = _run(capsys, "report", certs["violated"])
    cert = json.loads(certs["violated"].read_text())
    assert code == 0 and err == ""
    assert out.startswith("verdict: violated\n")
    assert f"counterexample input: {cert['counterexample']['input']}" in out


def test_html_report_written(capsys, certs: dict[str, Path], tmp_path: Path) -> None:
    out_path = tmp_path / "r.html"
    code, out, err = _run(capsys, "report", certs["certify"], "--html", out_path)
    assert code == 0 and err == ""
    assert out.strip() == f"wrote {out_path}"
    page = out_path.read_text()
    assert "Certified (probabilistic)" in page and "data-kind='histogram'" in page


@pytest.mark.parametrize(
    "content, fragment",
    [(None, "no such file"), ("{oops", "not valid JSON"), ('{"a": 1}', "not a simcert certificate")],
)
def test_bad_certificate_exits_2_with_one_line(capsys, tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    out_html = tmp_path / "r.html"
    code, out, err = _run(capsys, "report", path, "--html", out_html)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("simcert: error: ") and fragment in err
    assert not out_html.exists()  # no half-written output


def test_html_into_missing_directory_exits_2(capsys, certs: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "report", certs["holds"], "--html", tmp_path / "no" / "r.html")
    assert code == 2 and "does not exist" in err
