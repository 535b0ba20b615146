"""`tdkt run`: month-end consolidation, completeness, and each message sent exactly once."""

from __future__ import annotations

import email
import email.policy
import io
import shutil
import socket
from collections import Counter

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.monthly.job import run_lock

from .conftest import SAMPLES

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is a dev dependency")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        for recipient in envelope.rcpt_tos:
            self.messages.append((recipient, message))
        return "250 OK"


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _Inbox()
    controller = aiosmtpd.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def month_office(office, smtp_server):
    _, port = smtp_server
    root = office()
    shutil.rmtree(root / "hop-thu")
    shutil.copytree(SAMPLES / "hop-thu", root / "hop-thu")
    config = (root / "tdkt.toml").read_text(encoding="utf-8")
    config = config.split("[smtp]")[0] + (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'sender = "tdkt@tanlap.gov.vn"\n')
    (root / "tdkt.toml").write_text(config, encoding="utf-8")
    return root


def _run(root, out, *extra):
    return CliRunner().invoke(main, ["run", "--period", "2025-10", "--config",
                                     str(root / "tdkt.toml"), "--out", str(out), *extra])


def _attachments(message) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def test_monthly_each_recipient_gets_one_message_then_nothing_new(month_office, smtp_server,
                                                                  tmp_path):
    handler, _ = smtp_server
    out = tmp_path / "out"
    first = _run(month_office, out)
    assert first.exit_code == 0, first.output
    got = Counter(recipient for recipient, _ in handler.messages)
    assert got["lanh-dao.phong@tanlap.gov.vn"] == 1 and got["thidua@sogddt.anphu.gov.vn"] == 1
    schools = {r for r in got if r.endswith("@tanlap.edu.vn")}
    assert len(schools) >= 10 and all(got[r] == 1 for r in schools)
    office_mail = next(m for r, m in handler.messages if r.startswith("lanh-dao"))
    files = _attachments(office_mail)
    assert set(files) == {"tong-hop-phong.xlsx", "2025-10_dang-ky.xlsx"}
    book = openpyxl.load_workbook(io.BytesIO(files["tong-hop-phong.xlsx"]))
    assert "Theo cấp học" in book.sheetnames
    progress = openpyxl.load_workbook(io.BytesIO(files["2025-10_dang-ky.xlsx"]))
    assert "Theo đơn vị" in progress.sheetnames
    assert "chưa nộp" in office_mail.get_body(("plain",)).get_content().lower()
    count = len(handler.messages)
    second = _run(month_office, out)
    assert second.exit_code == 0, second.output
    assert len(handler.messages) == count  # nothing new
    # One school corrects one of its two faulty cells and sends the file again.
    path = month_office / "hop-thu" / "dang-ky_02001.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["Cá nhân"]
    cell = next(c for row in ws.iter_rows() for c in row if c.value == "Lao ®éng tiªn tiÕn")
    cell.value = "Lao động tiên tiến"
    wb.save(path)
    third = _run(month_office, out)
    assert third.exit_code == 0, third.output
    new = [r for r, _ in handler.messages[count:]]
    assert sorted(new) == sorted(["c201@tanlap.edu.vn", "lanh-dao.phong@tanlap.gov.vn",
                                  "thidua@sogddt.anphu.gov.vn"])
    lines = (out / "tdkt-run.log").read_text(encoding="utf-8").splitlines()
    log = [line for line in lines if '"command": "run"' in line]
    assert len(log) == 3 and '"replaced": ["dang-ky_02001.xlsx"]' in log[-1]


def test_monthly_dry_run_writes_eml_and_sends_nothing(month_office, smtp_server, tmp_path):
    handler, _ = smtp_server
    out = tmp_path / "out"
    result = _run(month_office, out, "--dry-run")
    assert result.exit_code == 0, result.output
    assert handler.messages == []
    written = sorted((out / "thu-gui" / "2025-10").glob("*.eml"))
    assert len(written) >= 12
    message = email.message_from_bytes(written[0].read_bytes(), policy=email.policy.default)
    assert message["Subject"].startswith("[TĐKT]")


def test_monthly_second_run_at_once_exits_3(month_office, tmp_path):
    out = tmp_path / "out"
    with run_lock(out):
        result = _run(month_office, out)
    assert result.exit_code == 3
    assert "Một lần chạy khác đang chạy" in result.output


def test_monthly_completeness_matches_the_arrival_truth(month_office, tmp_path, expected):
    """Files arrive on 10/10 or 20/10 (due 15/10): the progress report says who is late."""
    import datetime as dt
    import os

    from pipeline.config import load_config
    from pipeline.monthly.job import run_month

    from .conftest import table_rows

    arrival = {}
    for path in sorted((month_office / "hop-thu").iterdir()):
        day = dt.datetime(2025, 10, 10 if len(arrival) % 3 else 20, 9, 0)
        os.utime(path, (day.timestamp(), day.timestamp()))
        arrival[path.name] = day.date()
    month = run_month(load_config(month_office / "tdkt.toml"), tmp_path / "out", "2025-10",
                      dry_run=True)
    (run,) = month.rounds
    rows = {r["Mã đơn vị"]: r for r in table_rows(run.report, "Theo đơn vị", "STT")}
    truth_units = expected["units"]
    assert set(rows) == set(truth_units)
    for code, unit in truth_units.items():
        if unit["status"] == "Chưa nộp":
            assert rows[code]["Tình trạng"] == "Chưa nộp", code
            continue
        late = arrival[unit["file"]] > dt.date(2025, 10, 15)
        assert rows[code]["Tình trạng"] == ("Nộp muộn" if late else "Đúng hạn"), code
        assert rows[code]["Tệp đã nhận"] == unit["file"]


CHILD = """
import sys, time
from pathlib import Path
import pipeline.monthly.deliver as deliver
from pipeline.config import load_config
from pipeline.monthly.job import run_month

original = deliver._log_sent

def stalled(*args, **kwargs):  # the first message is sent and logged, then the run hangs
    original(*args, **kwargs)
    print("sent", flush=True)
    time.sleep(60)

deliver._log_sent = stalled
run_month(load_config(Path(sys.argv[1])), Path(sys.argv[2]), "2025-10")
"""


@pytest.mark.skipif(__import__("os").name == "nt", reason="SIGKILL is POSIX-only")
def test_monthly_run_killed_while_sending_resumes_without_duplicates(month_office, smtp_server,
                                                                     tmp_path):
    import signal
    import subprocess
    import sys

    from pipeline.store.database import open_store

    handler, _ = smtp_server
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(month_office / "tdkt.toml"),
                              str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "sent"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert len(handler.messages) == 1
    outputs = out / "2025-2026" / "dang-ky"
    assert (outputs / "tong-hop-phong.xlsx").is_file()  # written before any mail went out
    connection = open_store(out / "tdkt-lich-su.sqlite")
    try:
        assert connection.execute("SELECT COUNT(*) FROM send_log").fetchone()[0] == 1
    finally:
        connection.close()
    again = _run(month_office, out)
    assert again.exit_code == 0, again.output
    got = Counter(recipient for recipient, _ in handler.messages)
    assert len(got) >= 12 and set(got.values()) == {1}  # the first one was not sent twice
