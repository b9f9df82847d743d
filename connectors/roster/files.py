"""Read HR roster files into tables of Unicode strings.

CSV: UTF-8 (with or without BOM), UTF-16 "Unicode Text" (Excel's tab-separated export), and
8-bit files, which are Windows-1258 or legacy TCVN3/VNI font text: the choice between those is
made for the whole file with the core's syllable model. Delimiters , ; and TAB are sniffed.
XLSX: openpyxl (first sheet or a named one), cached values of formulas, dates as ISO dates.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from syncd.naming.legacy import Encoding, convert, detect
from syncd.roster import RosterError, Table

MAX_BYTES = 20 * 1024 * 1024


def _decode(raw: bytes, source: str) -> tuple[str, str]:
    """Bytes → (text, what it was read as)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if b"\x00" in raw:
        raise RosterError(f"{source}: binary data (NUL bytes); not a CSV roster")
    # 8-bit: Windows-1258 Unicode text, or a legacy font encoding seen through Latin-1.
    as_1258 = raw.decode("cp1258", errors="replace")
    as_latin = raw.decode("latin-1")
    cells = [c for line in as_latin.splitlines() for c in line.split(",")]
    legacy = detect(cells)
    unicode_ok = detect(as_1258.splitlines()).valid[Encoding.UNICODE]
    if legacy.encoding is not Encoding.UNICODE and legacy.valid[legacy.encoding] > unicode_ok:
        return convert(as_latin, legacy.encoding), legacy.encoding.value
    return as_1258, "windows-1258"


def _read_csv(raw: bytes, source: str, sha: str) -> Table:
    text, decoded_as = _decode(raw, source)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise RosterError(f"{source}: not a readable CSV file: {exc}") from exc
    if not rows or not any(c.strip() for c in rows[0]):
        raise RosterError(f"{source}: row 1: no header row")
    body = [(i, r) for i, r in enumerate(rows[1:], start=2)]
    return Table(source, rows[0], body, decoded_as, sha)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(path: Path, source: str, sha: str, sheet: str | None) -> Table:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterError(f"{source}: not a readable XLSX workbook: {exc}") from exc
    except Exception as exc:  # corrupt archives surface as zlib, XML, … errors
        raise RosterError(
            f"{source}: not a readable XLSX workbook ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise RosterError(
                    f"{source}: no sheet named {sheet!r} (sheets: {', '.join(book.sheetnames)})"
                )
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        rows = [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
    except RosterError:
        raise
    except Exception as exc:  # openpyxl raises many things on corrupt sheets
        raise RosterError(f"{source}: not a readable XLSX workbook: {exc}") from exc
    finally:
        book.close()
    if not rows or not any(c.strip() for c in rows[0]):
        raise RosterError(f"{source}: row 1: no header row")
    return Table(source, rows[0], list(enumerate(rows[1:], start=2)), "xlsx", sha)


def read_table(path: Path, sheet: str | None = None) -> Table:
    """Read one roster file; raise :class:`RosterError` with the file name on any problem."""
    source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise RosterError(f"{source}: {size} bytes, more than the {MAX_BYTES} a roster may be")
        raw = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{source}: cannot read: {exc.strerror}") from exc
    sha = hashlib.sha256(raw).hexdigest()
    if raw[:4] == b"PK\x03\x04" or path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path, source, sha, sheet)
    if path.suffix.lower() == ".xls":
        raise RosterError(f"{source}: old Excel .xls is not supported; save it as .xlsx or CSV")
    return _read_csv(raw, source, sha)
