"""Every default of tdkt, named once."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
# The definitions tdkt ships (forms, vocabularies, rules, criteria, the finding catalogue, the
# texts): the schemas/ folder of the source tree, installed as the package pipeline.catalog
# (pyproject.toml maps one onto the other, in a wheel and in an editable install alike).
CATALOG_PACKAGE = "pipeline.catalog"


def _schemas_dir() -> Path:
    """Where the installed definitions are, found once through importlib.resources."""
    try:
        root = resources.files(CATALOG_PACKAGE)
    except ModuleNotFoundError:  # a source tree used without being installed
        return PROJECT_DIR / "schemas"
    if not isinstance(root, Path):  # e.g. imported from a zip file: folders cannot be listed
        raise RuntimeError(f"Không đọc được thư mục định nghĩa biểu mẫu {root}: hãy cài tdkt "
                           "bằng pip (không chạy từ tệp nén).")
    return root


SCHEMAS_DIR = _schemas_dir()
FORMS_DIR = SCHEMAS_DIR / "forms"
VOCAB_DIR = SCHEMAS_DIR / "vocab"
RULES_DIR = SCHEMAS_DIR / "rules"
CRITERIA_DIR = SCHEMAS_DIR / "criteria"
CATALOGUE_PATH = SCHEMAS_DIR / "findings.yaml"
TEXTS_PATH = SCHEMAS_DIR / "texts.yaml"

# The hidden sheet every template carries: A1 form id, B1 version, C1 unit code.
META_SHEET = "_tdkt"
# The hidden sheet holding the dropdown lists of a template.
LISTS_SHEET = "Danh mục"
INSTRUCTIONS_SHEET = "Hướng dẫn"

# Extensions the reader opens as workbooks; anything else is reported, never opened.
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")
# How far down a sheet the reader looks for the header row and header fields.
HEADER_SCAN_ROWS = 30
# A header row must match at least this many of a sheet's columns to count.
MIN_HEADER_MATCHES = 3
# Rows in a template left open for input on the staff sheet (beyond the registry headcount).
TEMPLATE_SPARE_ROWS = 30
TEMPLATE_MIN_ROWS = 60
TEMPLATE_COLLECTIVE_ROWS = 15
# Empty rows left below the collectives carried over from the registration (results form).
TEMPLATE_SPARE_COLLECTIVE_ROWS = 5
# Excel's limit for an inline dropdown list (characters); longer lists go to a hidden sheet.
EXCEL_INLINE_LIST_LIMIT = 255

# Rows whose text starts with one of these (folded) phrases end a table: signature blocks.
FOOTER_PREFIXES = (
    "ngay ",
    "thu truong",
    "hieu truong",
    "nguoi lap",
    "xac nhan",
    "(ky",
    "ky ten",
    "noi nhan",
)

# The round `tdkt consolidate` runs when none is named; a round's outputs go to a folder named
# after it under the school year.
DEFAULT_ROUND = "dang-ky"
FEEDBACK_DIR = "phan-hoi"
# The Sở's outputs of a round, inside the round's folder: output/<năm học>/<round>/tinh/.
PROVINCE_DIR = "tinh"
LOCK_FILE = ".tdkt.lock"
MANIFEST_FILE = "manifest.json"
# One JSON line per run (consolidate and month-end), in the output folder.
RUN_LOG = "tdkt-run.log"
# A round's earlier outputs, when a run replaces them: kept under OUT/<năm học>/sao-luu/<round>/
# in a folder named by when they were written, the newest BACKUPS_KEPT of each round.
BACKUP_DIR = "sao-luu"
BACKUPS_KEPT = 3
# A run that would consolidate fewer than this share of the units the round's last run
# consolidated (an emptied or mistyped inbox) is refused unless forced (`--force`).
MIN_KEPT_SHARE = 0.5
# The history store, in the output folder unless tdkt.toml names another place (`store = …`).
STORE_FILE = "tdkt-lich-su.sqlite"
# The Sở's history store, when its output folder is also a Phòng's (the samples).
PROVINCE_STORE_FILE = "tdkt-lich-su-tinh.sqlite"

# Exit codes of the command line.
EXIT_OK = 0
EXIT_STRICT_ERRORS = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
# `tdkt run`: the run completed but at least one message could not be sent.
EXIT_NOT_SENT = 4

# Month-end runs (`tdkt run`): months after a round's due month in which files that arrive
# late are still picked up ([[calendar]] late_months); the SMTP timeouts (seconds) and the
# time all retries of one run may take together, so an unreachable server ends the run in
# well under a minute whatever the number of messages ([smtp] connect_timeout, timeout,
# retry_budget).
LATE_MONTHS = 2
SMTP_CONNECT_TIMEOUT = 10.0
SMTP_TIMEOUT = 20.0
SMTP_RETRY_BUDGET = 20.0
# Seconds the Windows commands that read a password file's access list (icacls, whoami) may
# take before the file is called uncheckable.
ACL_COMMAND_TIMEOUT = 15.0

# Read the inbox in one process per core from this many files on.
PARALLEL_MIN_FILES = 64
# The files whose sheets are validated together, while the next ones are read (Pandera's cost
# per run is a few milliseconds: per file it would be most of the validation's time).
VALIDATION_BATCH = 500
# Near the end of the inbox the batches halve, down to this many files (the last one is
# validated after the readers are done, with nothing else running).
VALIDATION_TAIL = 32
# At most this many worker processes, however many cores.
MAX_WORKERS = 8
# While the parent writes the history store's rows, the workbook workers' jobs but the first
# (the longest) run this much nicer (POSIX niceness; on Linux also in the idle scheduling
# class): the rows and that job keep a core each.
BACKGROUND_NICENESS = 10
# The environment variable that forces how worker processes start (fork, spawn, forkserver);
# unset, they fork where the platform can (Linux) and are spawned elsewhere (Windows, macOS).
START_METHOD_ENV = "TDKT_START_METHOD"

# Show a progress bar from this many files on.
PROGRESS_MIN_FILES = 20

FONT_NAME = "Times New Roman"

# Template input checks: dates typed into a template must fall in this range (ISO dates).
TEMPLATE_DATE_RANGE = ("1940-01-01", "2030-12-31")
# Width of a template column the form does not define (the header block needs five columns).
TEMPLATE_DEFAULT_WIDTH = 14

# Limits on what one inbox file may be (a safety guard against broken or hostile files);
# tdkt.toml may change them in its [limits] table.
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_UNCOMPRESSED_BYTES = 300 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
# Rows and columns read from one sheet; cells beyond are cut (with a warning), never loaded.
MAX_ROWS = 20_000
MAX_COLUMNS = 200
# A zip under this unpacked size is never called a zip bomb, whatever its compression ratio.
ZIP_BOMB_MIN_BYTES = 10 * 1024 * 1024
# A zip directory larger than this lists too many members to parse (each costs memory).
MAX_ZIP_DIRECTORY_BYTES = 4 * 1024 * 1024
# Each file is read in a reader process (pipeline/ingest/isolated.py): on Linux its address
# space may grow this much beyond what it inherits, and a run of files still being read after
# this many seconds is given up (its files then read one by one: the one still being read
# after that long is given up); either way that file gets `unreadable-workbook`.
READER_MEMORY_BYTES = 2 * 1024 * 1024 * 1024
READER_TIMEOUT_SECONDS = 300
# Files are sent to a reader several at a time, weighing together at most this much (a larger
# file alone): the time allowed is per run, and a run of large files must not overrun it.
READER_RUN_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one inbox file may be: its size, its unpacked size, and the rows and columns read."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES
    max_compression_ratio: float = MAX_COMPRESSION_RATIO
    max_rows: int = MAX_ROWS
    max_columns: int = MAX_COLUMNS


def default_limits() -> Limits:
    """The limits named above, read when called (so a changed constant takes effect)."""
    return Limits(max_file_bytes=MAX_FILE_BYTES, max_uncompressed_bytes=MAX_UNCOMPRESSED_BYTES,
                  max_compression_ratio=MAX_COMPRESSION_RATIO, max_rows=MAX_ROWS,
                  max_columns=MAX_COLUMNS)
