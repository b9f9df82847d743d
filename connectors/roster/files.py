"""Read HR roster files into tables of Unicode strings.

CSV: UTF-8 (with or without BOM), UTF-16 "Unicode Text" (Excel's tab-separated export), and
8-bit files, which are Windows-1258 or legacy TCVN3/VNI font text: the choice between those is
made for the whole file with the core's syllable model, and a line only another encoding makes
Vietnamese is read in that one. Delimiters , ; and TAB are sniffed.
XLSX: openpyxl (first sheet or a named one), cached values of formulas, dates as ISO dates.

Every decode or parse failure is a :class:`RosterError` naming the file and, where known, the
byte offset and line (CSV) or row (XLSX), on one line; never a traceback. A file that is
mostly well-formed UTF-8 with a broken sequence is rejected rather than read as 8-bit text.

Bounds (issue "A safe inbox"): a 5 KB XLSX whose one cell sits at XFD1048576 used to grow
without bound, because openpyxl pads every missing row to the sheet's declared width. Nothing a
file declares is trusted: the sheet's dimension is dropped before reading, the zip's members
are bounded before openpyxl opens them, and the reader counts rows, columns and cells itself.
Every bound hit is one :class:`RosterError` line naming the file and the bound.

Issue 11: a 5 MB XLSX of a million rows each holding one empty cell at column XFD slipped under
every bound (empty cells are trimmed, empty rows were not counted) and held the run lock for a
quarter of an hour. Every row read now counts toward :data:`MAX_ROWS`, a row's width is
checked without walking its padding in Python, and the reading stops after
:data:`MAX_EMPTY_TAIL` consecutive empty rows. A CSV cell spanning lines is refused: no roster
field does, and one stray ``"`` used to join the rows after it into one cell, dropping those
people (then revoked) and writing their data into someone's title.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from pathlib import Path

from syncd.naming.legacy import Encoding, convert, detect
from syncd.naming.legacy_cells import all_syllables
from syncd.roster import RosterError, Table

# Bounds on what one roster may be. A province's HR roster has thousands to tens of thousands of
# people and about ten to twenty columns; these are an order of magnitude above that, yet keep
# the worst file well under the unit's MemoryMax=1G (config/systemd/syncd.service).
MAX_BYTES = 20 * 1024 * 1024  # the file as stored: ~200,000 rows of CSV at 100 bytes a row
MAX_ROWS = 200_000  # rows read, header and blank rows within the data included
MAX_COLUMNS = 100  # the last non-empty cell of a row; trailing empty cells do not count
# Cells kept (each a Python string and a list slot, ~60 bytes): 200,000 rows of 10 cells, or
# 20 MB of CSV at 10 bytes a cell. Bounds the product MAX_ROWS x MAX_COLUMNS, 20 million.
MAX_CELLS = 2_000_000
# A run of this many empty rows ends the data: what follows is formatting, not people. Data
# after such a run is refused, not dropped: a roster is authoritative for its organisations,
# and people silently not read would be removed from the directory.
MAX_EMPTY_RUN = 1_000
# Past that run the rest is only looked through for data, and not forever: a workbook of a
# million rows of empty cells takes minutes to parse inside the run lock. After this many
# consecutive empty rows the file is refused; Excel's formatted-but-empty rows below a real
# roster are far fewer.
MAX_EMPTY_TAIL = 10_000
# XLSX is a zip: its members' uncompressed sizes bound what openpyxl can inflate (Python's
# zipfile stops a member at its recorded size). Sheet XML compresses 5-10x, hence ten times the
# file bound in all; the parts openpyxl holds in memory whole (shared strings, styles, the
# workbook) get a quarter of that each.
MAX_UNZIPPED_BYTES = 10 * MAX_BYTES
MAX_PART_BYTES = MAX_UNZIPPED_BYTES // 4
MAX_ZIP_MEMBERS = 1_000  # a workbook has a few dozen parts
XLSX_MAX_ROWS = 1_048_576  # Excel's last row: rows beyond it mean a forged row number
MAX_MESSAGE = 300  # characters of a library's error message quoted in ours
MAX_QUOTED = 40  # characters of a cell quoted in an error
_LINE_BREAK = re.compile(r"[\r\n]")

# Byte-order marks, longest first (the UTF-32-LE mark begins with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _one_line(text: str) -> str:
    """A library's message made safe to quote: one line, no control characters, bounded."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _line(raw: bytes, start: int, offset: int, codec: str) -> int:
    """The line (1-based) of the byte at ``offset`` of ``raw`` (text from ``start``)."""
    return raw[start:offset].decode(codec, errors="replace").count("\n") + 1


def _bad_bytes(
    source: str, raw: bytes, start: int, codec: str, label: str, exc: UnicodeError
) -> RosterError:
    offset = start + getattr(exc, "start", 0)
    reason = _one_line(getattr(exc, "reason", str(exc)))
    return RosterError(
        f"{source}: byte {offset} (line {_line(raw, start, offset, codec)}): not valid {label} "
        f"({reason}); save the file again as UTF-8 CSV or XLSX"
    )


def _no_nul(text: str, raw: bytes, start: int, codec: str, source: str) -> str:
    at = text.find("\x00")
    if at >= 0:
        offset = start + len(text[:at].encode(codec))
        line = text.count("\n", 0, at) + 1
        raise RosterError(
            f"{source}: byte {offset} (line {line}): NUL character; binary data, not a CSV roster"
        )
    return text


def _decode(raw: bytes, source: str) -> tuple[str, str]:
    """Bytes → (text, what it was read as); :class:`RosterError` naming the byte when invalid."""
    for bom, codec, label in _BOMS:
        if raw.startswith(bom):
            if label == "UTF-32":
                raise RosterError(f"{source}: UTF-32 text is not supported; save it as UTF-8")
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise _bad_bytes(source, raw, len(bom), codec, label, exc) from None
            read_as = "utf-8-sig" if label == "UTF-8" else "utf-16"
            return _no_nul(text, raw, len(bom), codec, source), read_as
    try:
        return _no_nul(raw.decode("utf-8"), raw, 0, "utf-8", source), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise RosterError(
            f"{source}: byte {nul} (line {line}): NUL byte; binary data, not a CSV roster"
        )
    # Mostly well-formed UTF-8 with a few broken sequences is a damaged UTF-8 file, not 8-bit
    # text (which almost never forms valid UTF-8 sequences): reading it as 8-bit would garble
    # every name.
    valid = len(_UTF8_MULTIBYTE.findall(raw))
    broken = raw.decode("utf-8", errors="replace").count("\ufffd")
    if valid >= 4 * broken:
        raise _bad_bytes(source, raw, 0, "utf-8", "UTF-8", utf8_error)
    return _decode_8bit(raw, source)


_8BIT: dict[str, Callable[[bytes], str]] = {
    "windows-1258": lambda b: b.decode("cp1258", errors="replace"),
    "tcvn3": lambda b: convert(b.decode("latin-1"), Encoding.TCVN3),
    "vni": lambda b: convert(b.decode("latin-1"), Encoding.VNI),
}


_SEPARATORS = re.compile(r'[,;\t"]')


def _vietnamese(line: str) -> bool:
    return all_syllables(_SEPARATORS.sub(" ", line))


def _decode_8bit(raw: bytes, source: str) -> tuple[str, str]:
    """Windows-1258 Unicode text, or a legacy font encoding seen through Latin-1.

    The file as a whole decides; a line the file's encoding does not make Vietnamese but
    another one does is read in that one (rows pasted from another file: without this they
    became silently garbled names, ``Nguyờịn Vón éaũt``), and ``decoded_as`` names them all.
    In a file that mixes encodings, a line that is Vietnamese in two of them cannot be decided
    (``Lê Văn Tám`` in Windows-1258 is ``Lờ Vón Tỏm`` in TCVN3): the file is refused.
    """
    as_1258 = raw.decode("cp1258", errors="replace")
    as_latin = raw.decode("latin-1")
    cells = [c for line in as_latin.splitlines() for c in line.split(",")]
    legacy = detect(cells)
    unicode_ok = detect(as_1258.splitlines()).valid[Encoding.UNICODE]
    whole = "windows-1258"
    if legacy.encoding is not Encoding.UNICODE and legacy.valid[legacy.encoding] > unicode_ok:
        whole = legacy.encoding.value
    others = [name for name in _8BIT if name != whole]
    raw_lines = raw.split(b"\n")
    lines: list[str] = []
    used = {whole}
    for line in raw_lines:
        text = line.decode("ascii") if line.isascii() else _8BIT[whole](line)
        if not line.isascii() and not _vietnamese(text):
            for name in others:
                if _vietnamese(other := _8BIT[name](line)):
                    text = other
                    used.add(name)
                    break
        lines.append(text)
    ambiguous: list[tuple[int, dict[str, str]]] = []
    if len(used) > 1:  # only then can a line valid in the file's encoding be in doubt
        for number, line in enumerate(raw_lines, start=1):
            if line.isascii():
                continue
            readings = {name: read(line) for name, read in _8BIT.items()}
            valid = {name: t for name, t in readings.items() if _vietnamese(t)}
            if len(set(valid.values())) > 1:
                ambiguous.append((number, valid))
                break
    if len(used) > 1 and ambiguous:
        number, readings = ambiguous[0]
        both = " or ".join(f"{name} {text.strip()!r}" for name, text in readings.items())
        raise RosterError(
            _one_line(
                f"{source}: line {number}: the file mixes encodings ({', '.join(sorted(used))}) "
                f"and this line reads as Vietnamese in more than one ({both}); "
                "save the file again as UTF-8"
            )
        )
    return "\n".join(lines), "+".join([whole, *sorted(used - {whole})])


def _quoted(value: str) -> str:
    """A cell shown in an error: its start only (a swallowed cell can hold the whole file)."""
    return repr(value if len(value) <= MAX_QUOTED else value[: MAX_QUOTED - 1] + "…")


def _column_name(header: list[str], index: int) -> str:
    from openpyxl.utils import get_column_letter  # see _read_xlsx

    name = header[index].strip() if index < len(header) else ""
    return repr(_one_line(name)[:MAX_QUOTED]) if name else get_column_letter(index + 1)


def _spans_lines(source: str, number: int, line: int, header: list[str], row: list[str]) -> None:
    """Refuse a cell holding a line break: a quote never closed makes one (issue 11).

    No roster field spans lines, and a stray ``"`` joins every line after it into one cell
    until the next quote or the end of the file: the people on those lines would silently
    not be read (so revoked) and their data would become someone's title. ``line`` is the
    physical line the row starts on, where the cell (the first one spanning lines) starts.
    """
    for index, value in enumerate(row):
        if _LINE_BREAK.search(value):
            raise RosterError(
                f"{source}: row {number} (line {line}), column "
                f"{_column_name(header if number > 1 else [], index)}, value {_quoted(value)}: "
                'a cell spanning lines: a quote (") never closed joins the lines after it into '
                "the cell (remove or close it), or the cell holds a line break (Alt+Enter: "
                "remove it); no cell of a roster spans lines"
            )


def _unclosed_quote_at_end(
    text: str, start_line: int, dialect: type[csv.Dialect] | csv.Dialect
) -> bool:
    """Whether the last row ends inside a quoted cell (the tolerant reader keeps it silently).

    Only the last row, from the line it starts on, is parsed again strictly: a quote never
    closed at the end of the file holds no line break when the file has no final newline.
    """
    # csv counts lines as StringIO splits them (CR, LF or CRLF): skip as many the same way
    tail = "".join(itertools.islice(io.StringIO(text, newline=""), start_line - 1, None))
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), dialect, strict=True):
            pass
    except csv.Error as exc:
        return str(exc) == "unexpected end of data"
    return False


def _read_csv(raw: bytes, source: str, sha: str) -> Table:
    text, decoded_as = _decode(raw, source)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except Exception:  # the sniffer fails in many ways on odd text
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] = []
    where = [0, 1]  # the last row's number and the physical line it starts on

    def lines() -> Iterator[list[str]]:
        # A row's width is real bytes here (at most MAX_BYTES fields): it is bounded after
        # csv has split it. Empty cells past the last column are dropped, as Excel writes them.
        start = 1
        for number, row in enumerate(reader, start=1):
            if reader.line_num > start:  # the row took more than one line: find the cell
                _spans_lines(source, number, start, header, row)
            where[:] = [number, start]
            start = reader.line_num + 1
            if number == 1:
                header.extend(row)
            if len(row) > MAX_COLUMNS:
                if any(c.strip() for c in row[MAX_COLUMNS:]):
                    last = max(i for i, c in enumerate(row) if c.strip()) + 1
                    raise RosterError(
                        f"{source}: line {reader.line_num}: {last} columns, more than the "
                        f"{MAX_COLUMNS} a roster may have"
                    )
                del row[MAX_COLUMNS:]
            yield row

    try:
        rows = _bounded(lines(), source)
    except csv.Error as exc:
        raise RosterError(
            f"{source}: line {reader.line_num}: not a readable CSV file: {_one_line(str(exc))}"
        ) from None
    if where[0] and _unclosed_quote_at_end(text, where[1], dialect):
        raise RosterError(
            f'{source}: row {where[0]} (line {where[1]}): a quote (") opened on this row is never '
            "closed before the end of the file: remove or close the quote"
        )
    if not rows or not any(c.strip() for c in rows[0]):
        raise RosterError(f"{source}: row 1: no header row")
    body = [(i, r) for i, r in enumerate(rows[1:], start=2)]
    return Table(source, rows[0], body, decoded_as, sha)


def _bounded(rows: Iterable[list[str]], source: str) -> list[list[str]]:
    """The rows up to the first run of :data:`MAX_EMPTY_RUN` empty rows, within the bounds.

    After such a run nothing is kept, but the rest is still looked through, up to
    :data:`MAX_EMPTY_TAIL` consecutive empty rows: a non-empty row there refuses the file, and
    so does a longer run. Every row read counts toward :data:`MAX_ROWS`, empty or not: rows of
    empty cells cost as much to parse as rows of people.
    """
    kept: list[list[str]] = []
    cells = 0
    run = 0
    trailing = 0  # empty rows at the end of ``kept``
    for number, row in enumerate(rows, start=1):
        if number > MAX_ROWS:
            raise RosterError(
                f"{source}: row {number}: more than the {MAX_ROWS} rows a roster may have "
                "(empty rows count)"
            )
        empty = not any(c.strip() for c in row)
        if run >= MAX_EMPTY_RUN:  # past the end of the data: only look
            if not empty:
                raise RosterError(
                    f"{source}: row {number}: data after {run} empty rows (from row "
                    f"{number - run}); rows after {MAX_EMPTY_RUN} empty rows are not read: "
                    "remove the empty rows"
                )
            run += 1
            if run > MAX_EMPTY_TAIL:
                raise RosterError(
                    f"{source}: row {number}: more than the {MAX_EMPTY_TAIL} empty rows a "
                    f"roster may have after the data (from row {number - run + 1}); delete "
                    "them"
                )
            continue
        run = run + 1 if empty else 0
        cells += len(row)
        if cells > MAX_CELLS:
            raise RosterError(
                f"{source}: row {number}: more than the {MAX_CELLS} cells a roster may have"
            )
        kept.append(row)
        trailing = trailing + 1 if empty else 0
    if run >= MAX_EMPTY_RUN:
        del kept[len(kept) - trailing :]  # the run itself is not data
    return kept


def _width(row: tuple[object, ...]) -> int:
    """The row's width up to its last non-empty value.

    openpyxl pads a row to its last stored cell, empty or not: one ``<c r="XFD7"/>`` makes
    16,384 values. Walking them in Python took a millisecond a row (15 minutes for the
    attacker's million rows); the padding past :data:`MAX_COLUMNS` is counted in C instead.
    """
    width = len(row)
    if width > MAX_COLUMNS:
        tail = row[MAX_COLUMNS:]
        if tail.count(None) + tail.count("") == len(tail):
            width = MAX_COLUMNS
    while width and (row[width - 1] is None or row[width - 1] == ""):
        width -= 1  # at most MAX_COLUMNS steps, or up to a value beyond them (then refused)
    return width


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


def _check_zip(raw: bytes, source: str) -> None:
    """Bound a workbook's parts before openpyxl inflates them; a broken zip is left to it."""
    # Central-directory records, counted in the bytes before zipfile builds one object each.
    if raw.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:
        raise RosterError(
            f"{source}: more than {MAX_ZIP_MEMBERS} parts in the workbook; not a roster"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except Exception:  # openpyxl reports a broken zip in its own words
        return
    total = 0
    for member in members:
        total += member.file_size
        held_whole = not member.filename.startswith("xl/worksheets/")
        if held_whole and member.file_size > MAX_PART_BYTES:
            raise RosterError(
                _one_line(
                    f"{source}: part {member.filename!r} unpacks to {member.file_size} bytes, "
                    f"more than the {MAX_PART_BYTES} a workbook part may"
                )
            )
    if total > MAX_UNZIPPED_BYTES:
        raise RosterError(
            f"{source}: unpacks to {total} bytes, more than the {MAX_UNZIPPED_BYTES} a roster may"
        )


def _read_xlsx(raw: bytes, source: str, sha: str, sheet: str | None) -> Table:
    # openpyxl is imported here, not with the module: it takes ~0.16 s, a third of a command's
    # start, and most runs read CSV files or none (issue 14: a one-organisation run in 0.5 s)
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    def unreadable(exc: BaseException, where: str = "") -> RosterError:
        detail = _one_line(str(exc)) or "no detail"
        return RosterError(
            f"{source}: {where}not a readable XLSX workbook ({type(exc).__name__}: {detail})"
        )

    _check_zip(raw, source)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # not a zip, corrupt archive (zlib, XML, KeyError, …)
        raise unreadable(exc) from None
    rows: list[list[str]] = []
    seen = [0]  # the last row read, for a library's error
    try:
        if sheet is not None:
            if sheet not in book.sheetnames:
                names = ", ".join(map(repr, book.sheetnames))
                raise RosterError(
                    _one_line(f"{source}: no sheet named {sheet!r} (sheets: {names})")
                )
            ws = book[sheet]
        else:
            ws = book.worksheets[0]
        # The declared dimension (<dimension ref="A1:XFD1048576"/>) is not trusted: with it,
        # openpyxl pads every row, present or missing, to the declared width. Without it a
        # missing row is an empty tuple and a row is as wide as its last stored cell (at most
        # 18,278 columns, ZZZ, for a moment: the row is refused if it has more than MAX_COLUMNS).
        ws.reset_dimensions()

        def values() -> Iterator[list[str]]:
            for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
                if number > XLSX_MAX_ROWS:
                    raise RosterError(
                        f"{source}: row {number}: beyond the last row a worksheet can have "
                        f"({XLSX_MAX_ROWS}); a forged workbook"
                    )
                width = _width(row)
                if width > MAX_COLUMNS:
                    raise RosterError(
                        f"{source}: row {number}: a cell in column {width} "
                        f"({get_column_letter(min(width, 18278))}), more than the {MAX_COLUMNS} "
                        "columns a roster may have"
                    )
                cells = [_cell(v) for v in row[:width]]
                if any("\x00" in c for c in cells):
                    raise RosterError(
                        f"{source}: row {number}: NUL character in a cell; not a roster"
                    )
                seen[0] = number
                yield cells

        rows = _bounded(values(), source)
    except RosterError:
        raise
    except Exception as exc:  # openpyxl raises many things on corrupt sheets
        raise unreadable(exc, f"row {seen[0] + 1}: " if seen[0] else "") from None
    finally:
        with contextlib.suppress(Exception):
            book.close()
    if not rows or not any(c.strip() for c in rows[0]):
        raise RosterError(f"{source}: row 1: no header row")
    formulas = _uncached_formulas(raw, sheet, rows) if _UNCACHED.search(_sheet_xml(raw)) else {}
    return Table(source, rows[0], list(enumerate(rows[1:], start=2)), "xlsx", sha, formulas)


# A formula cell with no saved value: ``<c r="B2"><f>…</f></c>`` or with an empty ``<v>`` (a
# workbook a program wrote and Excel never recalculated). Its cached value reads as empty;
# without this the row would say "empty name" although Excel shows the name.
_UNCACHED = re.compile(rb"<f(?:\s[^>]*)?(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>")


def _sheet_xml(raw: bytes) -> bytes:
    """The worksheets' XML (bounded by _check_zip before this is called)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return b"".join(
                archive.read(m)
                for m in archive.namelist()
                if m.startswith("xl/worksheets/") and m.endswith(".xml")
            )
    except Exception:
        return b""


def _uncached_formulas(
    raw: bytes, sheet: str | None, values: list[list[str]]
) -> dict[tuple[int, int], str]:
    """(row, column index) → the formula, for each cell read as empty that holds a formula:
    read a second time, formulas as written (only when the XML shows such a cell)."""
    from openpyxl import load_workbook  # see _read_xlsx

    out: dict[tuple[int, int], str] = {}
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    except Exception:
        return out
    try:
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        ws.reset_dimensions()
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            if number > len(values):
                break
            seen = values[number - 1]
            for i, v in enumerate(row[: MAX_COLUMNS + 1]):
                text = getattr(v, "text", v)
                if (
                    isinstance(text, str)
                    and text.startswith("=")
                    and (i >= len(seen) or not seen[i])
                ):
                    out[(number, i)] = _one_line(text)[:100]
    except Exception:
        return out
    finally:
        with contextlib.suppress(Exception):
            book.close()
    return out


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
        return _read_xlsx(raw, source, sha, sheet)
    if path.suffix.lower() == ".xls":
        raise RosterError(f"{source}: old Excel .xls is not supported; save it as .xlsx or CSV")
    return _read_csv(raw, source, sha)
