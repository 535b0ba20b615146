"""Month-end email delivery against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import io
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from pipeline.monthly.deliver import (
    DeliveryError,
    Outgoing,
    SmtpSettings,
    attachment_digest,
    build_message,
    deliver,
    smtp_password,
    smtp_settings,
)
from pipeline.store.database import open_store

SENDER = "phong-gd@example.edu.vn"
PHONG = "tong-hop@example.edu.vn"
SO = "so-gd@example.edu.vn"
TRUONG = "c1-01001@example.edu.vn"
SUBJECT = "Tổng hợp thi đua tháng 10/2025 – Phòng Giáo dục và Đào tạo"
FIXED_NOW = datetime(2025, 10, 31, 17, 0, tzinfo=UTC)


class Recorder:
    """An SMTP handler that keeps what it accepted and rejects on request."""

    def __init__(self, reject_first: int = 0, reject_to: frozenset[str] = frozenset()) -> None:
        self.received: list[tuple[str, tuple[str, ...], bytes]] = []
        self.calls = 0
        self.reject_first = reject_first
        self.reject_to = reject_to
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.calls += 1
        if set(envelope.rcpt_tos) & self.reject_to:
            return "550 5.1.1 Mailbox unavailable"
        if self.calls <= self.reject_first:
            return "550 5.7.1 Try again later"
        self.received.append((envelope.mail_from, tuple(envelope.rcpt_tos),
                              bytes(envelope.content)))
        return "250 OK"

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        # handled=False: let the server answer 535 itself.
        return AuthResult(success=auth_data.password == b"Mat-khau-2025", handled=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """Start a server with the given handler; yields the settings that reach it."""
    controllers = []

    def start(handler: Recorder, **kwargs) -> SmtpSettings:
        port = _free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return SmtpSettings(host="127.0.0.1", port=port, security="none", sender=SENDER,
                            timeout=5)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def conn(tmp_path):
    connection = open_store(tmp_path / "kho.sqlite")
    yield connection
    connection.close()


def _workbook(path: Path, text: str) -> Path:
    book = openpyxl.Workbook()
    book.active.title = "Tổng hợp"
    book.active["A1"] = text
    book.active["B2"] = 42
    book.save(path)
    return path


@pytest.fixture
def items(tmp_path) -> list[Outgoing]:
    out = tmp_path / "out"
    out.mkdir()
    summary = _workbook(out / "Tổng hợp đăng ký thi đua.xlsx", "Phòng GD&ĐT")
    ranking = _workbook(out / "Xếp hạng khối.xlsx", "Xếp hạng")
    feedback = _workbook(out / "Phản hồi 01001.xlsx", "Trường Tiểu học Hòa Bình")
    return [
        Outgoing("2025-10/tong-hop/phong", (PHONG, SO), SUBJECT,
                 "Kính gửi Quý cơ quan,\nPhòng gửi bảng tổng hợp thi đua tháng 10.",
                 (summary, ranking)),
        Outgoing("2025-10/phan-hoi/01001", (TRUONG, PHONG), "Phản hồi hồ sơ thi đua – 01001",
                 "Kính gửi Hiệu trưởng,\nĐính kèm phản hồi về hồ sơ của trường.", (feedback,)),
    ]


def _parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def _attachments(raw: bytes) -> dict[str, str]:
    """File name → cell A1 of each attached workbook, read back with openpyxl."""
    found = {}
    for part in _parse(raw).iter_attachments():
        assert part.get_content_type() == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        book = openpyxl.load_workbook(io.BytesIO(part.get_content()))
        found[part.get_filename()] = book.active["A1"].value
    return found


def _by_recipient(handler: Recorder) -> dict[tuple[str, str], bytes]:
    received = {}
    for mail_from, rcpt_tos, raw in handler.received:
        assert mail_from == SENDER
        assert len(rcpt_tos) == 1
        key = (_parse(raw)["Subject"], rcpt_tos[0])
        assert key not in received, f"sent twice: {key}"
        received[key] = raw
    return received


def _log(conn) -> dict[tuple[str, str], str]:
    return conn.send_log()


def test_each_message_reaches_each_recipient_once_with_its_workbooks(smtp_server, conn, items):
    handler = Recorder()
    settings = smtp_server(handler)
    report = deliver(items, settings, conn, now=lambda: FIXED_NOW)

    assert sorted(report.sent) == sorted([
        ("2025-10/tong-hop/phong", PHONG), ("2025-10/tong-hop/phong", SO),
        ("2025-10/phan-hoi/01001", TRUONG), ("2025-10/phan-hoi/01001", PHONG)])
    assert report.failed == [] and report.skipped == [] and report.written == []
    received = _by_recipient(handler)
    assert set(received) == {(SUBJECT, PHONG), (SUBJECT, SO),
                             ("Phản hồi hồ sơ thi đua – 01001", TRUONG),
                             ("Phản hồi hồ sơ thi đua – 01001", PHONG)}
    assert _attachments(received[SUBJECT, SO]) == {
        "Tổng hợp đăng ký thi đua.xlsx": "Phòng GD&ĐT", "Xếp hạng khối.xlsx": "Xếp hạng"}
    assert _attachments(received["Phản hồi hồ sơ thi đua – 01001", TRUONG]) == {
        "Phản hồi 01001.xlsx": "Trường Tiểu học Hòa Bình"}
    message = _parse(received[SUBJECT, PHONG])
    assert message["From"] == SENDER
    assert message.get_body(("plain",)).get_content().startswith("Kính gửi Quý cơ quan,")
    assert message["Date"] and message["Message-ID"]
    assert _log(conn) == {(i.key, r): attachment_digest(i) for i in items for r in i.to}


def test_second_run_sends_nothing_new(smtp_server, conn, items):
    handler = Recorder()
    settings = smtp_server(handler)
    deliver(items, settings, conn)
    again = deliver(items, settings, conn)

    assert again.sent == [] and again.failed == []
    assert len(again.skipped) == 4
    assert len(handler.received) == 4


def test_changed_attachment_resends_only_that_message(smtp_server, conn, items):
    handler = Recorder()
    settings = smtp_server(handler)
    deliver(items, settings, conn)
    before = attachment_digest(items[1])
    _workbook(items[1].attachments[0], "Trường Tiểu học Hòa Bình – đã sửa")
    assert attachment_digest(items[1]) != before
    assert _log(conn)["2025-10/tong-hop/phong", SO] == attachment_digest(items[0])

    report = deliver(items, settings, conn)

    assert sorted(report.sent) == sorted([("2025-10/phan-hoi/01001", PHONG),
                                          ("2025-10/phan-hoi/01001", TRUONG)])
    assert sorted(report.skipped) == sorted([("2025-10/tong-hop/phong", PHONG),
                                             ("2025-10/tong-hop/phong", SO)])
    assert len(handler.received) == 6
    assert _attachments(handler.received[-1][2]) == {
        "Phản hồi 01001.xlsx": "Trường Tiểu học Hòa Bình – đã sửa"}


def test_dry_run_writes_eml_files_and_sends_nothing(smtp_server, conn, items, tmp_path):
    handler = Recorder()
    settings = smtp_server(handler)
    report = deliver(items, settings, conn, dry_run_dir=tmp_path / "thu-nhap")

    assert handler.calls == 0 and report.sent == []
    assert _log(conn) == {}
    names = sorted(p.name for p in report.written)
    assert names == sorted([
        f"2025-10_tong-hop_phong__{PHONG}.eml", f"2025-10_tong-hop_phong__{SO}.eml",
        f"2025-10_phan-hoi_01001__{TRUONG}.eml", f"2025-10_phan-hoi_01001__{PHONG}.eml"])
    raw = (tmp_path / "thu-nhap" / f"2025-10_tong-hop_phong__{SO}.eml").read_bytes()
    assert _parse(raw)["Subject"] == SUBJECT
    assert "Tổng hợp đăng ký thi đua.xlsx" in _attachments(raw)
    # No settings are needed to preview.
    assert len(deliver(items, None, conn, dry_run_dir=tmp_path / "xem-truoc").written) == 4


def test_rejected_send_is_retried_with_backoff(smtp_server, conn, items):
    handler = Recorder(reject_first=2)
    settings = smtp_server(handler)
    delays: list[float] = []
    report = deliver(items[1:], settings, conn, sleep=delays.append)

    assert delays == [1.0, 2.0]
    assert handler.calls == 4  # 2 rejected + the first recipient + the second
    assert sorted(report.sent) == sorted([("2025-10/phan-hoi/01001", PHONG),
                                          ("2025-10/phan-hoi/01001", TRUONG)])
    assert report.failed == []
    assert len(_by_recipient(handler)) == 2


def test_permanent_failure_is_reported_and_the_others_still_go(smtp_server, conn, items):
    handler = Recorder(reject_to=frozenset({SO}))
    settings = smtp_server(handler)
    delays: list[float] = []
    report = deliver(items, settings, conn, retries=2, backoff=0.5, sleep=delays.append)

    assert delays == [0.5, 1.0]
    assert [(k, r) for k, r, _ in report.failed] == [("2025-10/tong-hop/phong", SO)]
    error = report.failed[0][2]
    assert "3 lần thử" in error and "550" in error and "từ chối" in error
    assert len(report.sent) == 3
    assert ("2025-10/tong-hop/phong", SO) not in _log(conn)

    # Once the mailbox works again, only the failed one goes.
    handler.reject_to = frozenset()
    retry = deliver(items, settings, conn)
    assert retry.sent == [("2025-10/tong-hop/phong", SO)]
    assert len(retry.skipped) == 3


def test_interrupted_run_keeps_what_was_sent_and_nothing_else(smtp_server, conn, items):
    handler = Recorder(reject_to=frozenset({SO}))
    settings = smtp_server(handler)

    def killed(_delay):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deliver(items, settings, conn, sleep=killed)
    assert set(_log(conn)) == {("2025-10/tong-hop/phong", PHONG)}

    handler.reject_to = frozenset()
    report = deliver(items, settings, conn)
    assert report.skipped == [("2025-10/tong-hop/phong", PHONG)]
    assert len(report.sent) == 3
    assert len(_by_recipient(handler)) == 4


def test_server_down_is_a_failure_not_a_crash(conn, items):
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                            sender=SENDER, timeout=2)
    report = deliver(items[1:], settings, conn, retries=1, sleep=lambda _: None)
    assert report.sent == []
    assert len(report.failed) == 2
    assert "không kết nối được máy chủ thư" in report.failed[0][2]


def test_login_uses_the_password_from_the_environment(smtp_server, conn, items, monkeypatch,
                                                      capsys):
    handler = Recorder()
    settings = smtp_server(handler, authenticator=handler, auth_require_tls=False)
    settings = SmtpSettings(**{**settings.__dict__, "user": "phong-gd"})
    monkeypatch.setenv("TDKT_SMTP_PASSWORD", "Mat-khau-2025")
    report = deliver(items[1:], settings, conn)

    assert len(report.sent) == 2
    assert handler.logins[0] == (b"phong-gd", b"Mat-khau-2025")
    captured = capsys.readouterr()
    assert "Mat-khau-2025" not in captured.out + captured.err + repr(report) + repr(settings)


def test_password_with_diacritics_is_refused_before_connecting(conn, items, monkeypatch):
    # smtplib can only send ASCII passwords; say so instead of crashing mid-run.
    monkeypatch.setenv("TDKT_SMTP_PASSWORD", "mật-khẩu")
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                            user="phong-gd", sender=SENDER)
    with pytest.raises(DeliveryError, match="ASCII") as caught:
        deliver(items, settings, conn)
    assert "mật-khẩu" not in str(caught.value)


def test_wrong_password_stops_the_run(smtp_server, conn, items, monkeypatch):
    handler = Recorder()
    settings = smtp_server(handler, authenticator=handler, auth_require_tls=False)
    settings = SmtpSettings(**{**settings.__dict__, "user": "phong-gd"})
    monkeypatch.setenv("TDKT_SMTP_PASSWORD", "Wrong-9")
    with pytest.raises(DeliveryError, match="tài khoản/mật khẩu") as caught:
        deliver(items, settings, conn, sleep=lambda _: None)
    assert "Wrong-9" not in str(caught.value)
    # One login (smtplib tries each offered mechanism once); no retries that could lock it.
    assert {login for login in handler.logins} == {(b"phong-gd", b"Wrong-9")}
    assert len(handler.logins) <= 2
    assert _log(conn) == {}


def test_missing_password_stops_before_connecting(conn, items, monkeypatch):
    monkeypatch.delenv("TDKT_SMTP_PASSWORD", raising=False)
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                            user="phong-gd", sender=SENDER)
    with pytest.raises(DeliveryError, match="TDKT_SMTP_PASSWORD"):
        deliver(items, settings, conn)


def test_smtp_settings_from_toml_table(tmp_path):
    secret = tmp_path / "mat-khau.txt"
    secret.write_text("bí-mật\n", encoding="utf-8")
    os.chmod(secret, 0o600)
    settings = smtp_settings({"host": "smtp.example.edu.vn", "security": "ssl",
                              "user": "phong-gd", "sender": SENDER,
                              "password_file": "mat-khau.txt"}, tmp_path)
    assert settings == SmtpSettings(host="smtp.example.edu.vn", port=465, security="ssl",
                                    user="phong-gd", sender=SENDER,
                                    password_file=tmp_path / "mat-khau.txt", timeout=20.0)
    assert smtp_password(settings) == "bí-mật"
    assert "bí-mật" not in repr(settings)
    defaults = smtp_settings({"host": "smtp.example.edu.vn", "sender": SENDER}, tmp_path)
    assert (defaults.port, defaults.security, defaults.password_env) == (
        587, "starttls", "TDKT_SMTP_PASSWORD")


def test_password_file_readable_by_others_is_refused(tmp_path, conn, items):
    secret = tmp_path / "mat-khau.txt"
    secret.write_text("bí-mật\n", encoding="utf-8")
    os.chmod(secret, 0o644)
    raw = {"host": "127.0.0.1", "sender": SENDER, "user": "u", "password_file": str(secret)}
    with pytest.raises(DeliveryError, match="chmod 600"):
        smtp_settings(raw, tmp_path)
    # Also when the file is opened up after the settings were read.
    os.chmod(secret, 0o600)
    settings = smtp_settings(raw, tmp_path)
    os.chmod(secret, 0o640)
    with pytest.raises(DeliveryError, match="người khác đọc được"):
        deliver(items, settings, conn)


def test_password_in_the_config_file_is_refused(tmp_path):
    with pytest.raises(DeliveryError, match="không được ghi mật khẩu trong tệp cấu hình") as err:
        smtp_settings({"host": "smtp.example.edu.vn", "sender": SENDER,
                       "password": "bí-mật"}, tmp_path)
    assert "bí-mật" not in str(err.value)


@pytest.mark.parametrize("raw, match", [
    ({"host": "h", "sender": SENDER, "pasword_env": "X"}, "khóa không hợp lệ: pasword_env"),
    ({"sender": SENDER}, "host"),
    ({"host": "h"}, "sender"),
    ({"host": "h", "sender": SENDER, "security": "tls"}, "security"),
    ({"host": "h", "sender": SENDER, "port": "587"}, "port"),
])
def test_bad_smtp_table_is_refused(tmp_path, raw, match):
    with pytest.raises(DeliveryError, match=match):
        smtp_settings(raw, tmp_path)


def test_vietnamese_subject_and_file_name_round_trip(items):
    message = build_message(items[0], SENDER, date=FIXED_NOW)
    raw = message.as_bytes()
    raw.decode("ascii")  # 7-bit on the wire: RFC 2047 subject, RFC 2231 file names
    assert b"filename*=utf-8''" in raw
    parsed = _parse(raw)
    assert parsed["Subject"] == SUBJECT
    assert [p.get_filename() for p in parsed.iter_attachments()] == [
        "Tổng hợp đăng ký thi đua.xlsx", "Xếp hạng khối.xlsx"]
    assert parsed.get_body(("plain",)).get_content().rstrip("\n") == items[0].body
    assert parsed["Message-ID"] == build_message(items[0], SENDER)["Message-ID"]


def test_digest_is_stable_and_covers_key_recipients_and_files(items):
    item = items[0]
    assert attachment_digest(item) == attachment_digest(
        Outgoing(item.key, tuple(reversed(item.to)), "khác", "khác", item.attachments))
    assert attachment_digest(item) != attachment_digest(
        Outgoing(item.key + "-2", item.to, item.subject, item.body, item.attachments))
    assert attachment_digest(item) != attachment_digest(
        Outgoing(item.key, item.to[:1], item.subject, item.body, item.attachments))


def test_send_log_is_part_of_the_store_schema(conn):
    columns = [row[1] for row in conn.execute("PRAGMA table_info(send_log)")]
    assert columns == ["key", "recipient", "digest", "sent_at"]


# A dead server never holds the run


def _many(items: list[Outgoing], count: int) -> list[Outgoing]:
    """`count` school messages with the same workbook."""
    feedback = items[1].attachments
    return [Outgoing(f"2025-10/phan-hoi/{i:05d}", (f"c{i}@example.edu.vn",), f"Phản hồi {i}",
                     "Kính gửi,", feedback) for i in range(count)]


def test_closed_port_stops_after_one_message_whatever_the_number(conn, items):
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                            sender=SENDER)
    delays: list[float] = []
    report = deliver(_many(items, 40), settings, conn, sleep=delays.append)
    assert delays == [1.0, 2.0, 4.0]  # the first message's retries, then no more tries
    assert report.sent == [] and len(report.failed) == 40
    assert "không kết nối được máy chủ thư" in report.failed[0][2]
    assert "4 lần thử" in report.failed[0][2]
    assert report.stopped and "đã dừng gửi" in report.stopped
    assert all(error == report.stopped for _, _, error in report.failed[1:])
    assert _log(conn) == {}


def test_retries_stay_within_the_budget(conn, items):
    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), security="none",
                            sender=SENDER, retry_budget=3.5)
    delays: list[float] = []
    deliver(_many(items, 5), settings, conn, sleep=delays.append)
    assert delays == [1.0, 2.0]  # a third wait (4 s) would pass the 3.5 s budget


@pytest.fixture
def silent_server():
    """A port that accepts connections and never says anything (a hung mail server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    yield listener.getsockname()[1]
    listener.close()


def test_server_that_never_greets_times_out_once(conn, items, silent_server):
    import time

    settings = SmtpSettings(host="127.0.0.1", port=silent_server, security="none",
                            sender=SENDER, connect_timeout=0.3, retry_budget=0.5)
    started = time.monotonic()
    report = deliver(_many(items, 30), settings, conn, sleep=time.sleep)
    elapsed = time.monotonic() - started
    assert len(report.failed) == 30 and report.stopped
    assert "quá thời gian chờ" in report.failed[0][2]
    assert elapsed < 3, elapsed  # not 30 messages × 4 tries × the timeout


class Stalling(Recorder):
    """Greets and takes the envelope, then never answers the message's data."""

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        self.calls += 1
        await asyncio.sleep(5)
        return "250 OK"


def test_stalled_send_times_out_and_spends_the_budget(smtp_server, conn, items):
    import time

    handler = Stalling()
    settings = smtp_server(handler)
    settings = SmtpSettings(**{**settings.__dict__, "timeout": 0.3, "retry_budget": 0.2})
    started = time.monotonic()
    report = deliver(_many(items, 20), settings, conn, sleep=time.sleep)
    assert time.monotonic() - started < 3
    assert handler.calls == 1  # one stalled exchange used the budget: nothing more is tried
    assert len(report.failed) == 20 and report.stopped
    assert "quá thời gian chờ" in report.failed[0][2]


def test_from_header_names_the_office_even_in_a_preview(conn, items, tmp_path):
    office = "Phòng Văn hóa – Xã hội"
    message = build_message(items[0], SENDER, name=office)
    parsed = _parse(message.as_bytes())
    assert parsed["From"].addresses[0].display_name == office
    assert parsed["From"].addresses[0].addr_spec == SENDER
    report = deliver(items, None, conn, dry_run_dir=tmp_path / "xem-truoc", sender_name=office)
    for path in report.written:
        sender = _parse(path.read_bytes())["From"].addresses[0]
        assert sender.display_name == office and sender.addr_spec.endswith(".invalid")


@pytest.mark.parametrize("raw, match", [
    ({"host": "h", "sender": SENDER, "connect_timeout": 0}, "connect_timeout"),
    ({"host": "h", "sender": SENDER, "retry_budget": -1}, "retry_budget"),
    ({"host": "h", "sender": SENDER, "timeout": 3600}, "timeout"),
])
def test_bad_smtp_timeouts_are_refused(tmp_path, raw, match):
    with pytest.raises(DeliveryError, match=match):
        smtp_settings(raw, tmp_path)
