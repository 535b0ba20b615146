"""Outputs looked at as a person would: workbooks printed to PDF by LibreOffice headless and
read back page by page (pdftotext), with the checks every printed page must pass.

Shared by the print tests of the Phòng, Sở and feedback workbooks (issue 14). One soffice
call converts many workbooks (its start-up is most of the cost)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

# A rule id as the rule data spells it: "registration.commendation", "cstd_co_so.base".
# File names and mail domains ("ket-qua_01001.xlsx", "tanlap.edu.vn") are not rule ids.
RULE_ID = re.compile(r"(?<![\w.@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
                     r"\.(?!(?:xlsx|xls|ods|pdf|yaml|toml|edu|gov|vn|com)\b)[a-z][a-z0-9_]*\b")
# Words of English a Vietnamese page never needs (Click, Python, pandas, our identifiers).
ENGLISH = re.compile(
    r"\b(?:the|and|of|with|for|error|errors|warning|true|false|none|nan|nat|total|"
    r"unit|units|file|files|sheet|row|column|level|block|status|round|rule|rules|"
    r"passed|failed|pending|check|usage|options?|default|invalid|traceback)\b",
    re.IGNORECASE)


def tools_or_skip() -> str:
    """LibreOffice's command; the test is skipped where LibreOffice or poppler is missing
    (.ci/run installs both on Debian)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice/pdftotext not installed; .ci/run installs them on Debian")
    return soffice


def render_pdfs(paths: Iterable[Path], out_dir: Path) -> dict[Path, Path]:
    """Each workbook printed to PDF by LibreOffice (one process for all, own profile):
    {workbook: pdf}. Names must be distinct by stem."""
    soffice = tools_or_skip()
    paths = list(paths)
    stems = [p.stem for p in paths]
    assert len(set(stems)) == len(stems), "render_pdfs needs distinct file stems"
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([soffice, f"-env:UserInstallation=file://{out_dir / 'lo-profile'}",
                    "--headless", "--convert-to", "pdf", "--outdir", str(out_dir),
                    *map(str, paths)], check=True, capture_output=True, timeout=600)
    pdfs = {p: out_dir / f"{p.stem}.pdf" for p in paths}
    missing = [str(p) for p, pdf in pdfs.items() if not pdf.exists()]
    assert not missing, f"LibreOffice did not print {missing}"
    return pdfs


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page (pdftotext -layout; pages end with a form feed)."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=120,
                          capture_output=True, text=True).stdout
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def page_problems(pages: list[str], allowed: Iterable[str] = ()) -> list[str]:
    """What no printed page may show: a `###` cell, a rule id, an English word (words in
    `allowed`, e.g. an e-mail address or a proper name on the page, are not counted)."""
    allowed = set(allowed)
    problems = []
    for number, page in enumerate(pages, start=1):
        if "###" in page:
            problems.append(f"trang {number}: ô hiện ###")
        for found in RULE_ID.findall(page):
            if found not in allowed and "@" not in found:
                problems.append(f"trang {number}: mã quy tắc {found!r}")
        for found in ENGLISH.findall(page):
            if found not in allowed:
                problems.append(f"trang {number}: chữ tiếng Anh {found!r}")
    return problems
