"""Email the month-end workbooks: one message per item, sent once to each recipient.

Every (message key, recipient) that went out is recorded in the store's `send_log` with a digest
of the message's identity and attachments, each in its own small transaction right after the
server accepted it. A run killed half-way therefore never sends a message twice and never marks
as sent what was not; a later run sends a message again only when its attachments changed.

The SMTP password is read only from an environment variable or from a file readable by its owner
alone, never from the configuration text or the command line, and is never printed or logged.

A dead server never holds the run: connecting and each later exchange have their own timeouts,
all retries of one call share a time budget, and once the server can't be reached (or the budget
is spent on network failures) the remaining messages are reported as not sent without trying.
In all, failures cost at most the budget plus one attempt (connect + one exchange timeout):
under a minute with the defaults of `pipeline.settings`.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import operator
import os
import re
import smtplib
import sqlite3
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from pipeline import settings as defaults
from pipeline.store.database import Store, StoreError

XLSX_TYPE = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PASSWORD_ENV = "TDKT_SMTP_PASSWORD"
# The From address of a preview (.eml) when no [smtp] sender is configured (.invalid: RFC 2606).
PREVIEW_SENDER = "tdkt@may-chu-thu-chua-khai-bao.invalid"


class DeliveryError(Exception):
    """The mail settings can't be used (or the send log can't be written): the run stops."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    user: str | None = None
    sender: str = ""  # the From address
    password_env: str | None = DEFAULT_PASSWORD_ENV  # the password comes only from this variable
    password_file: Path | None = None  # ... or from a file readable by its owner alone
    timeout: float = defaults.SMTP_TIMEOUT  # seconds for each exchange once connected
    connect_timeout: float = defaults.SMTP_CONNECT_TIMEOUT  # connect, greeting, TLS, login
    retry_budget: float = defaults.SMTP_RETRY_BUDGET  # all failed tries and waits of one run


@dataclass(frozen=True)
class Outgoing:
    """One message: a stable key ("2025-10/phan-hoi/01001"), its recipients and workbooks."""

    key: str
    to: tuple[str, ...]
    subject: str
    body: str
    attachments: tuple[Path, ...]


@dataclass
class Report:
    """What deliver() did, per (key, recipient); `failed` adds the Vietnamese error."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    stopped: str | None = None  # why sending stopped early (server unreachable), if it did


# Settings


_SETTING_KEYS = ("host", "port", "security", "user", "sender", "password_env", "password_file",
                 "timeout", "connect_timeout", "retry_budget")
_SECONDS = {"timeout": defaults.SMTP_TIMEOUT, "connect_timeout": defaults.SMTP_CONNECT_TIMEOUT,
            "retry_budget": defaults.SMTP_RETRY_BUDGET}


def smtp_settings(raw: dict, base: Path) -> SmtpSettings:
    """The [smtp] table of tdkt.toml as settings; `password_file` is relative to `base`."""
    if "password" in raw:
        raise DeliveryError(
            "Mục [smtp]: không được ghi mật khẩu trong tệp cấu hình. Hãy đặt mật khẩu trong biến "
            f"môi trường {raw.get('password_env') or DEFAULT_PASSWORD_ENV} hoặc trong một tệp "
            "chỉ chủ sở hữu đọc được (password_file).")
    unknown = sorted(set(raw) - set(_SETTING_KEYS))
    if unknown:
        raise DeliveryError(f"Mục [smtp] có khóa không hợp lệ: {', '.join(unknown)} "
                            f"(chỉ dùng: {', '.join(_SETTING_KEYS)}).")
    host = raw.get("host")
    if not isinstance(host, str) or not host.strip():
        raise DeliveryError("Mục [smtp] phải có host (máy chủ thư), "
                            "ví dụ host = \"smtp.gmail.com\".")
    security = raw.get("security", "starttls")
    if security not in SECURITY_MODES:
        raise DeliveryError(f"Mục [smtp]: security = “{security}” không hợp lệ "
                            f"(chỉ dùng: {', '.join(SECURITY_MODES)}).")
    port = raw.get("port", 465 if security == "ssl" else 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise DeliveryError(f"Mục [smtp]: port = “{port}” không phải số cổng hợp lệ.")
    seconds = {key: raw.get(key, default) for key, default in _SECONDS.items()}
    for key, value in seconds.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 < value <= 600 or (key == "retry_budget" and value == 0)):
            raise DeliveryError(f"Mục [smtp]: {key} = “{value}” phải là số giây dương "
                                "(không quá 600).")
    sender = raw.get("sender", "")
    if not isinstance(sender, str) or "@" not in sender:
        raise DeliveryError("Mục [smtp] phải có sender (địa chỉ người gửi), "
                            "ví dụ sender = \"phong-gd@example.edu.vn\".")
    for name in ("user", "password_env", "password_file"):
        if name in raw and not isinstance(raw[name], str):
            raise DeliveryError(f"Mục [smtp]: {name} phải là một chuỗi.")
    password_file = None
    if raw.get("password_file"):
        password_file = Path(raw["password_file"]).expanduser()
        if not password_file.is_absolute():
            password_file = Path(base) / password_file
    settings = SmtpSettings(host=host.strip(), port=port, security=security,
                            user=raw.get("user") or None, sender=sender.strip(),
                            password_env=raw.get("password_env", DEFAULT_PASSWORD_ENV) or None,
                            password_file=password_file,
                            **{key: float(value) for key, value in seconds.items()})
    if password_file is not None and password_file.exists():
        check_password_file(password_file)
    return settings


def check_password_file(path: Path, *, platform: str | None = None,
                        read_acl: Callable[[Path], FileAcl | None] | None = None) -> None:
    """Raise unless `path` is a regular file that only its owner can read or write.

    On Windows, where POSIX mode bits mean nothing, its access list is read instead
    (`read_acl`, by default icacls and whoami): only the account running tdkt, the system and
    the administrators may read it. `platform` defaults to sys.platform."""
    try:
        info = path.stat()
    except OSError as exc:
        raise DeliveryError(f"Không đọc được tệp mật khẩu {path}: {exc.strerror}.") from exc
    if not stat.S_ISREG(info.st_mode):
        raise DeliveryError(f"Tệp mật khẩu {path} không phải là một tệp thường.")
    if (platform or sys.platform) == "win32":
        _check_private_windows(path, (read_acl or windows_acl)(path))
    elif info.st_mode & 0o077:
        raise DeliveryError(
            f"Tệp mật khẩu {path} đang cho người khác đọc được (quyền "
            f"{stat.S_IMODE(info.st_mode):o}). Hãy chạy: chmod 600 \"{path}\" rồi chạy lại.")


def _check_private_windows(path: Path, acl: FileAcl | None) -> None:
    readers = other_readers(acl.saved, acl.user_sid) if acl is not None else None
    if readers is None:
        raise DeliveryError(
            f"Không kiểm tra được ai đọc được tệp mật khẩu {path} trên máy này (không chạy được "
            "lệnh icacls hoặc whoami của Windows, hoặc ổ đĩa không lưu quyền truy cập). Hãy bỏ "
            f"password_file khỏi mục [smtp] và đặt mật khẩu trong biến môi trường "
            f"{DEFAULT_PASSWORD_ENV} (Command Prompt: setx {DEFAULT_PASSWORD_ENV} \"mật khẩu\"), "
            "hoặc chép tệp vào một thư mục trên ổ NTFS của máy rồi chạy lại.")
    if readers:
        names = ", ".join(reader.name for reader in readers)
        explicit = " ".join(reader.account for reader in readers if not reader.inherited)
        remove = f" và icacls \"{path}\" /remove:g {explicit}" if explicit else ""
        raise DeliveryError(
            f"Tệp mật khẩu {path} đang cho tài khoản hoặc nhóm khác đọc được ({names}). Hãy mở "
            f"Command Prompt và chạy: icacls \"{path}\" /inheritance:r /grant:r "
            f"\"%USERNAME%:F\"{remove} (chỉ để tài khoản của bạn đọc được) rồi chạy lại.")


# Windows: who may read the password file


@dataclass(frozen=True)
class FileAcl:
    """A file's access list as `icacls FILE /save` writes it (SDDL) and the SID of the account
    running tdkt (`whoami /user`)."""

    saved: str
    user_sid: str


@dataclass(frozen=True)
class Reader:
    """An account or group other than the owner that may read a file."""

    name: str  # as Windows shows it in English, or its SID
    account: str  # as icacls takes it: *SID, or the name of a domain group
    inherited: bool  # granted by the folder (removed by /inheritance:r)


# The system, the administrators, the file's owner: they can always read the file.
_TRUSTED = {"SY", "S-1-5-18", "BA", "S-1-5-32-544", "OW", "S-1-3-4", "CO", "S-1-3-0"}
# Well-known SDDL abbreviations: the name Windows shows and the SID icacls takes (None for the
# groups of a domain, whose SIDs depend on the domain).
_ACCOUNTS = {
    "WD": ("Everyone", "S-1-1-0"), "AU": ("Authenticated Users", "S-1-5-11"),
    "BU": ("Users", "S-1-5-32-545"), "BG": ("Guests", "S-1-5-32-546"),
    "PU": ("Power Users", "S-1-5-32-547"), "IU": ("INTERACTIVE", "S-1-5-4"),
    "NU": ("NETWORK", "S-1-5-2"), "AN": ("ANONYMOUS LOGON", "S-1-5-7"),
    "AC": ("ALL APPLICATION PACKAGES", "S-1-15-2-1"),
    "RU": ("Pre-Windows 2000 Compatible Access", "S-1-5-32-554"),
    "DU": ("Domain Users", None), "DG": ("Domain Guests", None), "DC": ("Domain Computers", None),
}
_SID_NAMES = {sid: name for name, sid in _ACCOUNTS.values() if sid}
# Access mask bits that let an account read a file's content: FILE_READ_DATA, MAXIMUM_ALLOWED,
# GENERIC_ALL, GENERIC_READ.
_READ_BITS = 0x1 | 0x02000000 | 0x10000000 | 0x80000000
_RIGHTS = {
    "GA": 0x10000000, "GR": 0x80000000, "GW": 0x40000000, "GX": 0x20000000,
    "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116, "FX": 0x1200A0,
    "KA": 0xF003F, "KR": 0x20019, "KW": 0x20006, "KX": 0x20019,
    "RC": 0x20000, "SD": 0x10000, "WD": 0x40000, "WO": 0x80000,
    "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8, "RP": 0x10, "WP": 0x20, "DT": 0x40, "LO": 0x80,
    "CR": 0x100,
}


def other_readers(saved: str, user_sid: str) -> list[Reader] | None:
    """Who besides `user_sid`, the system, the administrators and the owner may read a file,
    from its access list as `icacls FILE /save` writes it; None when the text holds none."""
    dacl = next((line.strip() for line in saved.splitlines() if line.strip().startswith("D:")),
                None)
    if dacl is None:
        return None
    flags = re.match(r"D:([A-Z_]*)", dacl)
    if flags and "NO_ACCESS_CONTROL" in flags.group(1):  # no list at all: everyone has access
        return [Reader("Everyone", "*S-1-1-0", inherited=False)]
    readers: dict[str, Reader] = {}
    for ace in re.findall(r"\(([^()]*)\)", dacl):
        fields = ace.split(";")
        if len(fields) < 6:
            return None
        kind, ace_flags, rights, sid = fields[0], fields[1], fields[2], fields[5].upper()
        if kind not in ("A", "OA", "XA", "ZA") or "IO" in _pairs(ace_flags):
            continue  # a denial, an audit entry, or one that only applies to new files
        if sid in _TRUSTED or sid == user_sid.upper() or not _mask(rights) & _READ_BITS:
            continue
        name, known_sid = _ACCOUNTS.get(sid, (_SID_NAMES.get(sid, sid), None))
        account = f"*{known_sid or sid}" if (known_sid or sid.startswith("S-")) else f'"{name}"'
        inherited = "ID" in _pairs(ace_flags)
        old = readers.get(sid)
        readers[sid] = Reader(name, account, inherited and (old is None or old.inherited))
    return list(readers.values())


def _pairs(text: str) -> list[str]:
    return [text[i:i + 2] for i in range(0, len(text), 2)]


def _mask(rights: str) -> int:
    """An SDDL rights field as an access mask; an unknown right counts as reading."""
    if rights.lower().startswith("0x"):
        try:
            return int(rights, 16)
        except ValueError:
            return _READ_BITS
    return functools.reduce(operator.or_, (_RIGHTS.get(p, _READ_BITS) for p in _pairs(rights)), 0)


def windows_acl(path: Path) -> FileAcl | None:
    """The access list of `path` and the SID of the account running tdkt, read with the
    Windows commands icacls and whoami; None when either cannot be run or says nothing usable
    (not on Windows, a drive without access lists, a command that is missing or times out)."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "acl.txt"
        if _command(["icacls", str(path), "/save", str(target), "/q"]) is None:
            return None
        try:
            saved = _decoded(target.read_bytes())
        except OSError:
            return None
    sids = re.findall(r"S-1-[0-9]+(?:-[0-9]+)+", _command(["whoami", "/user", "/fo", "csv",
                                                           "/nh"]) or "")
    return FileAcl(saved, sids[-1]) if sids else None


def _command(args: list[str]) -> str | None:
    """What a Windows command printed, or None when it cannot be run or fails."""
    try:
        done = subprocess.run(args, capture_output=True, timeout=defaults.ACL_COMMAND_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL,
                              creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _decoded(data: bytes) -> str:
    """The text of an icacls /save file: UTF-16 (with or without its byte order mark)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    if len(data) > 1 and data[1:2] == b"\x00":
        return data.decode("utf-16-le", errors="replace")
    return data.decode("utf-8", errors="replace")


def smtp_password(settings: SmtpSettings) -> str | None:
    """The password from the password file (checked private) or the environment variable."""
    if settings.password_file is not None:
        check_password_file(settings.password_file)
        try:
            text = settings.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DeliveryError(
                f"Không đọc được tệp mật khẩu {settings.password_file}.") from exc
        return text.rstrip("\r\n") or None
    if settings.password_env:
        return os.environ.get(settings.password_env) or None
    return None


# Messages


def _read_attachments(item: Outgoing) -> list[tuple[str, bytes]]:
    """(file name in NFC, bytes) of each attachment, in the item's order."""
    return [(unicodedata.normalize("NFC", Path(path).name), Path(path).read_bytes())
            for path in item.attachments]


def _digest(item: Outgoing, files: list[tuple[str, bytes]]) -> str:
    sha = hashlib.sha256()

    def part(data: bytes) -> None:
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)

    part(item.key.encode("utf-8"))
    for recipient in sorted(set(item.to)):
        part(recipient.encode("utf-8"))
    for name, data in files:
        part(name.encode("utf-8"))
        part(data)
    return sha.hexdigest()


def attachment_digest(item: Outgoing) -> str:
    """sha256 over the key, the sorted recipients and each attachment's name and bytes."""
    return _digest(item, _read_attachments(item))


def from_header(sender: str, name: str = "") -> str:
    """The From header: the office's name (when given) and the sender address."""
    sender = sender or PREVIEW_SENDER
    if not name:
        return sender
    try:
        return str(Address(display_name=unicodedata.normalize("NFC", name), addr_spec=sender))
    except (ValueError, IndexError):  # an address the parser refuses: the bare address
        return sender


def _message(item: Outgoing, sender: str, files: list[tuple[str, bytes]], digest: str,
             date: datetime | None, name: str = "") -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_header(sender, name)
    message["To"] = ", ".join(dict.fromkeys(item.to))
    message["Subject"] = unicodedata.normalize("NFC", item.subject)
    message["Date"] = email.utils.format_datetime(date or datetime.now().astimezone())
    domain = sender.rpartition("@")[2] or "tdkt.invalid"
    message["Message-ID"] = f"<{digest[:40]}.tdkt@{domain}>"
    # Quoted-printable keeps the whole message 7-bit, whatever the server announces.
    message.set_content(unicodedata.normalize("NFC", item.body), cte="quoted-printable")
    for name, data in files:
        message.add_attachment(data, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=name)
    return message


def build_message(item: Outgoing, sender: str, *, date: datetime | None = None,
                  name: str = "") -> EmailMessage:
    """The UTF-8 message of `item`, its workbooks attached under their own (NFC) file names,
    from `name` <`sender`>."""
    files = _read_attachments(item)
    return _message(item, sender, files, _digest(item, files), date, name)


# Send log


def _log_sent(store: Store, key: str, recipient: str, digest: str, sent_at: str) -> None:
    try:
        store.mark_sent(key, recipient, digest, sent_at)
    except (sqlite3.Error, StoreError) as exc:  # StoreError: the store could not be written
        raise DeliveryError(
            f"Thư {key} đã gửi đến {recipient} nhưng không ghi được vào nhật ký gửi thư ({exc}). "
            "Đã dừng để không gửi thêm thư mà không ghi lại được.") from exc


# Sending


class _ConnectFailed(Exception):
    """The session could not be opened (connect, greeting, TLS): `cause` says why."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Unreachable(Exception):
    """The server can't be reached: the remaining messages are not tried. `reason` says why
    (Vietnamese); the message is the failure of the last message tried."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Connection:
    """One SMTP session for a deliver() call, opened on first use and reopened after a failure."""

    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        self._settings = settings
        self._password = password
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self._smtp is None:
            self._smtp = self._open()
        self._smtp.send_message(message, from_addr=self._settings.sender, to_addrs=[recipient])

    def _open(self) -> smtplib.SMTP:
        """A session, connected and logged in within `connect_timeout` per step; later
        exchanges wait at most `timeout`. Raises _ConnectFailed, or the login refusal."""
        s = self._settings
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.connect_timeout,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.connect_timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise _ConnectFailed(exc) from exc
        try:
            if s.security == "starttls":
                smtp.ehlo()
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, self._password or "")
        except smtplib.SMTPAuthenticationError:
            smtp.close()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise _ConnectFailed(exc) from exc
        except BaseException:
            smtp.close()
            raise
        if smtp.sock is not None:
            smtp.sock.settimeout(s.timeout)
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _describe(exc: BaseException) -> str:
    """A short Vietnamese description of a send failure (never contains the password)."""
    if isinstance(exc, _ConnectFailed):
        exc = exc.cause
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return f"máy chủ thư từ chối ({exc.smtp_code} {text})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = "; ".join(f"{code} {msg.decode('utf-8', 'replace')}"
                          for code, msg in exc.recipients.values())
        return f"máy chủ thư từ chối người nhận ({codes})"
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a timed-out reply as "disconnected"
        return "quá thời gian chờ máy chủ thư"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "máy chủ thư ngắt kết nối"
    if isinstance(exc, ssl.SSLError):
        return f"lỗi kết nối bảo mật (SSL/TLS): {exc.reason or exc}"
    if isinstance(exc, OSError):
        return f"không kết nối được máy chủ thư ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"


def _network(exc: BaseException) -> bool:
    """A failure of the connection itself (as opposed to the server refusing one message)."""
    return isinstance(exc, _ConnectFailed) or not isinstance(
        exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused)


def _safe(text: str) -> str:
    return re.sub(r"[^\w.@+-]+", "_", text).strip("._") or "_"


@dataclass
class _Budget:
    """Seconds the failed tries and the waits between them may still take."""

    left: float


def deliver(items: list[Outgoing], settings: SmtpSettings | None, store: Store, *,
            dry_run_dir: Path | None = None, retries: int = 3, backoff: float = 1.0,
            sleep: Callable[[float], object] = time.sleep,
            now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
            clock: Callable[[], float] = time.monotonic, sender_name: str = "") -> Report:
    """Send each item once to each recipient, skipping what the send log shows as already sent.

    Every message is from `sender_name` <the [smtp] sender>. With `dry_run_dir`, write each
    message that would be sent as an .eml file there instead and record nothing. A message
    that still fails after `retries` retries (waits of `backoff`, doubling, while the
    settings' retry budget lasts) is reported in `failed` and the others go on; once the
    server can't be reached, the rest are reported in `failed` untried and `stopped` says why.
    Only unusable settings (or an unwritable send log) raise.
    """
    report = Report()
    if store.in_transaction:
        raise DeliveryError("Không gửi thư bên trong một giao dịch đang mở của kho lịch sử.")
    smtp: _Connection | None = None
    if dry_run_dir is None:
        if settings is None:
            raise DeliveryError("Chưa có mục [smtp] trong cấu hình: không gửi thư được.")
        if not settings.sender:
            raise DeliveryError("Mục [smtp] phải có sender (địa chỉ người gửi).")
        password = smtp_password(settings) if settings.user else None
        if settings.user and password is None:
            where = (f"tệp {settings.password_file}" if settings.password_file
                     else f"biến môi trường {settings.password_env}")
            raise DeliveryError(f"Chưa có mật khẩu cho tài khoản thư {settings.user} ({where}).")
        if password is not None and not password.isascii():
            raise DeliveryError(
                "Mật khẩu thư có ký tự không phải ASCII (chữ có dấu): thư viện SMTP không gửi được "
                "mật khẩu như vậy. Hãy đổi sang mật khẩu không dấu (hoặc mật khẩu ứng dụng).")
        smtp = _Connection(settings, password)
    else:
        dry_run_dir = Path(dry_run_dir)
    sender = settings.sender if settings else ""
    budget = _Budget(settings.retry_budget if settings else defaults.SMTP_RETRY_BUDGET)
    try:
        for item in items:
            recipients = [r.strip() for r in dict.fromkeys(item.to) if r.strip()]
            try:
                files = _read_attachments(item)
            except OSError as exc:
                error = f"không đọc được tệp đính kèm: {exc.filename} ({exc.strerror})"
                report.failed.extend((item.key, r, error) for r in recipients)
                continue
            digest = _digest(item, files)
            message = _message(item, sender, files, digest, now(), sender_name)
            for recipient in recipients:
                if store.sent(item.key, recipient) == digest:
                    report.skipped.append((item.key, recipient))
                elif dry_run_dir is not None:
                    dry_run_dir.mkdir(parents=True, exist_ok=True)
                    target = dry_run_dir / f"{_safe(item.key)}__{_safe(recipient)}.eml"
                    target.write_bytes(message.as_bytes())
                    report.written.append(target)
                elif report.stopped is not None:
                    report.failed.append((item.key, recipient, report.stopped))
                else:
                    assert smtp is not None
                    try:
                        error = _send(smtp, message, recipient, retries, backoff, sleep,
                                      budget, clock)
                    except _Unreachable as exc:
                        report.stopped = (f"chưa gửi vì {exc.reason}; đã dừng gửi thư lần này "
                                          "(sẽ gửi ở lần chạy sau)")
                        report.failed.append((item.key, recipient, str(exc)))
                        continue
                    if error is None:
                        _log_sent(store, item.key, recipient, digest,
                                  now().isoformat(timespec="seconds"))
                        report.sent.append((item.key, recipient))
                    else:
                        report.failed.append((item.key, recipient, error))
    finally:
        if smtp is not None:
            smtp.close()
    return report


def _send(smtp: _Connection, message: EmailMessage, recipient: str, retries: int,
          backoff: float, sleep: Callable[[float], object], budget: _Budget,
          clock: Callable[[], float]) -> str | None:
    """None once the server accepted the message, else the Vietnamese error of the last try.

    Raises _Unreachable when the server could not be reached at the last try, or a network
    failure came after the retry budget was spent."""
    attempts = max(retries, 0) + 1
    for attempt in range(attempts):
        started = clock()
        try:
            smtp.send(message, recipient)
            return None
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise DeliveryError(
                f"Máy chủ thư không chấp nhận tài khoản/mật khẩu ({exc.smtp_code}). "
                "Hãy kiểm tra user và mật khẩu rồi chạy lại; thư đã gửi sẽ không bị gửi lại."
            ) from None
        except (_ConnectFailed, smtplib.SMTPException, OSError) as exc:
            smtp.close()  # reconnect for the next try
            budget.left -= clock() - started
            error = _describe(exc)
            delay = backoff * 2 ** attempt
            if attempt + 1 < attempts and budget.left >= delay:
                sleep(delay)
                budget.left -= delay
                continue
            tried = f"sau {attempt + 1} lần thử: {error}"
            if isinstance(exc, _ConnectFailed) or (_network(exc) and budget.left <= 0):
                raise _Unreachable(f"gửi không thành công {tried}", error) from None
            return f"gửi không thành công {tried}"
    raise AssertionError("unreachable")  # pragma: no cover
