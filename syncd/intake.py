"""HR roster tables → validated people, per file, with every error located.

Maps the headers (:mod:`syncd.roster`), converts cells typed in legacy TCVN3/VNI fonts cell by
cell, validates each row and returns a :class:`~syncd.roster.Snapshot`. A file with any error
is rejected whole unless the configuration accepts valid rows, and a file is authoritative only
for the organisations in it.

Bounds on a cell (issue 11): a 2,000,000-character title was applied as a 2 MB directory
attribute and a 2 MB audit record. Every field has a maximum length, and a cell holding a line
break is refused where no value may span lines (a name, a code, a date); a title or a reason
typed on two lines in an Excel cell (Alt+Enter) is folded to one line. A CSV never gets here
with a line break: its reader refuses it, since a stray quote makes one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date

from syncd.errors import SyncdError
from syncd.model import Exemption, Person, Request
from syncd.naming.legacy import Encoding
from syncd.naming.legacy_cells import ColumnConversion, Verdict, convert_cells
from syncd.naming.parse import MAX_NAME, parse_name
from syncd.naming.text import fold_words, normalise
from syncd.orgs import Catalogue
from syncd.roster import (
    REQUEST_WORDS,
    STATUS_WORDS,
    TEXT_FIELDS,
    RosterError,
    RowError,
    Snapshot,
    Table,
    map_columns,
    parse_date,
)

_ENCODING_LABELS = {Encoding.TCVN3: "TCVN3", Encoding.VNI: "VNI"}
MAX_ROWS_NAMED = 10  # rows listed in one note; the rest are counted

# Characters a field may hold, normalised. Real values are far shorter; these keep a hostile
# cell out of the directory and the audit log (kept for years). The title's bound is AD's
# rangeUpper for ``title``, so a title valid here is valid in every directory; the name's is
# the naming rules' own.
MAX_LENGTH: dict[str, int] = {
    "employee_number": 64,
    "full_name": MAX_NAME,
    "title": 128,
}
MAX_FIELD = 256  # every other field: organisation, office, reason, status, request, dates
MAX_SHOWN = 60  # characters of a value quoted in a row error; a longer one is cut
# Fields whose value may be typed on two lines in one Excel cell: folded to one line. A line
# break anywhere else (a name, a code, a date) is an error, not something to guess about.
FOLDED = frozenset({"title", "exempt_reason"})
_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x85\u2028\u2029]")
# Control characters (C0 but the tab and line breaks, DEL, C1 but NEL): invisible in Excel and
# in every report, so ``CB-0002`` with a U+001F in it is another employee number that looks
# the same (found by an attack: a second mailbox made and the real one revoked). Refused.
# So are the direction controls (U+061C, U+200E-200F, U+202A-202E, U+2066-2069): "Chuyên
# viên" with a U+202E in it is shown reversed in the address list the organisation publishes,
# and a name with one was shown reversed on HR's page (found by an attack).
_CONTROL = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


_PLAIN_CODE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def _odd_in_code(value: str) -> str | None:
    """The first character of an employee number that is not printable ASCII, named; None
    when there is none. Found by an attack: U+2061, a tag character, a Hangul filler or a
    Cyrillic С in ``CB-SNV-0001`` read as another employee number that looks the same — a
    second mailbox made and the person's own revoked, as with control characters."""
    if _PLAIN_CODE.fullmatch(value):
        return None
    ch = next(c for c in value if not ("\x21" <= c <= "\x7e" or c == " "))
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"


def _visible(value: str) -> str:
    """A value with its control characters written out (``⟨U+001F⟩``), for a row error: in
    the report, HR's page and the JSON alike."""
    return _CONTROL.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", value)


def _shown(value: str) -> str:
    """A value as a row error shows it: cut, since it goes into reports and HR's result."""
    return value if len(value) <= MAX_SHOWN else value[: MAX_SHOWN - 1] + "…"


def _label(decision: ColumnConversion) -> str:
    encs = sorted({c.encoding for c in decision.cells if c.verdict is Verdict.CONVERTED})
    return " and ".join(_ENCODING_LABELS[e] for e in encs)


def _rows(indexes: Sequence[int], rows: Sequence[tuple[int, Sequence[str]]]) -> str:
    named = ", ".join(str(rows[i][0]) for i in indexes[:MAX_ROWS_NAMED])
    more = len(indexes) - MAX_ROWS_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def _legacy_notes(
    src: str,
    column: str,
    decision: ColumnConversion,
    rows: Sequence[tuple[int, Sequence[str]]],
) -> list[str]:
    """What the per-cell legacy conversion did to one column, for the run report."""
    notes: list[str] = []
    converted = decision.with_verdict(Verdict.CONVERTED)
    if converted:
        kept = [
            i
            for i, c in enumerate(decision.cells)
            if c.verdict is Verdict.KEPT and not c.original.isascii()
        ]
        notes.append(
            f"{src}: column {column}: {len(converted)} cell(s) typed in {_label(decision)} "
            f"converted to Unicode (rows {_rows(converted, rows)})"
            + (f"; {len(kept)} cell(s) already in Unicode kept as they are" if kept else "")
        )
    if decision.legacy_seen:
        for i in decision.with_verdict(Verdict.AMBIGUOUS)[:MAX_ROWS_NAMED]:
            c = decision.cells[i]
            notes.append(
                f"{src}: row {rows[i][0]}, column {column}: {c.original!r} is valid Vietnamese "
                f"as it stands and also as {c.encoding.value.upper()} ({c.alternative!r}); "
                "ambiguous, left as it is — check it"
            )
        more = len(decision.with_verdict(Verdict.AMBIGUOUS)) - MAX_ROWS_NAMED
        if more > 0:
            notes.append(f"{src}: column {column}: {more} more ambiguous cell(s) left as they are")
    for i in decision.with_verdict(Verdict.UNCONVERTIBLE)[:MAX_ROWS_NAMED]:
        c = decision.cells[i]
        notes.append(
            f"{src}: row {rows[i][0]}, column {column}: all or part of {c.original!r} looks "
            f"like {c.encoding.value.upper()} text (read so: {c.alternative!r}) but cannot be "
            "converted safely; left as it is"
        )
    return notes


# requests that keep a mailbox in use: they make no sense for a person HR says is leaving
KEEP_REQUESTS = frozenset({Request.CREATE, Request.RESET_PASSWORD, Request.RESTORE})


def read_roster(
    table: Table,
    catalogue: Catalogue,
    overrides: Mapping[str, str] | None = None,
    accept_valid_rows: bool = False,
) -> Snapshot:
    """Validate ``table``; every row error is collected, none stops the others."""
    src = table.source
    notes: list[str] = []
    legacy_names = {"tcvn3": "TCVN3 (ABC, .VnTime)", "vni": "VNI"}
    read_as = table.decoded_as.split("+")  # an 8-bit file may mix encodings line by line
    if len(read_as) > 1:
        notes.append(
            f"{src}: lines in different encodings ({', '.join(read_as)}); each line was read in "
            "the one that makes it Vietnamese; check the names"
        )
    elif table.decoded_as in legacy_names:
        notes.append(
            f"{src}: the file was typed in the legacy {legacy_names[table.decoded_as]} "
            "encoding; converted to Unicode"
        )
    elif table.decoded_as not in ("utf-8", "utf-8-sig", "xlsx"):
        notes.append(f"{src}: read as {table.decoded_as}")
    # A file decoded from TCVN3/VNI is Unicode now: converting its cells again would corrupt it.
    convert_cells_here = not set(read_as) & set(legacy_names)
    headers = list(table.headers)
    if convert_cells_here:
        head = convert_cells(headers)
        if head.with_verdict(Verdict.CONVERTED):
            headers = head.values
            notes.append(f"{src}: header row was typed in {_label(head)}; converted")
    cols = map_columns(headers, src, overrides)

    def cell(cells: Sequence[str], f: str) -> str:
        i = cols.get(f)
        # raw, not normalised yet: normalising first would drop U+00AD, TCVN3's ư
        return cells[i].strip() if i is not None and i < len(cells) else ""

    # Legacy text is decided per cell: a cell already in Unicode Vietnamese is never rewritten.
    columns = {f: [cell(c, f) for _, c in table.rows] for f in cols}
    suspect: dict[int, str] = {}  # row index → why its name cannot be trusted
    for f in TEXT_FIELDS:
        if f in columns and convert_cells_here:
            decision = convert_cells(columns[f])
            columns[f] = decision.values
            notes += _legacy_notes(src, repr(headers[cols[f]]), decision, table.rows)
            if f == "full_name":
                for i in decision.with_verdict(Verdict.UNCONVERTIBLE):
                    c = decision.cells[i]
                    suspect[i] = (
                        f"all or part of it looks like text typed in {c.encoding.value.upper()} "
                        f"(read so: {c.alternative!r}), but it cannot be converted safely; "
                        "retype the name in Unicode"
                    )

    # before normalising, which makes a line break a space
    broken = {
        (f, i): value
        for f, values in columns.items()
        if f not in FOLDED
        for i, value in enumerate(values)
        if _LINE_BREAK.search(value)
    }
    controlled = {
        (f, i): value
        for f, values in columns.items()
        for i, value in enumerate(values)
        if _CONTROL.search(value)
    }
    columns = {f: [normalise(v) for v in values] for f, values in columns.items()}
    errors: list[RowError] = []
    people: list[Person] = []
    seen: dict[str, int] = {}
    raw_seen: set[str] = set()
    error_orgs: set[str] = set()
    unknown_org_rows = False
    for i, (rowno, _) in enumerate(table.rows):
        v = {f: columns[f][i] for f in columns}
        if not any(v.values()):
            continue  # blank line
        row_errors: list[RowError] = []

        def err(
            f: str,
            message: str,
            v: dict[str, str] = v,
            rowno: int = rowno,
            out: list[RowError] = row_errors,
        ) -> None:
            out.append(RowError(src, rowno, headers[cols[f]], _shown(v.get(f, "")), message))

        uncached = [
            (f, table.formulas[(rowno, i)])
            for f, i in cols.items()
            if not v[f] and (rowno, i) in table.formulas
        ]
        if uncached:  # what Excel shows is not in the file: nothing else on the row is sure
            errors += [
                RowError(
                    src,
                    rowno,
                    headers[cols[f]],
                    formula,
                    "a formula without a saved value (the file was written by a program and "
                    "never saved in Excel); open and save it in Excel, or paste the values",
                )
                for f, formula in uncached
            ]
            found = catalogue.find(v["org"]) if v["org"] else None
            if found is None:  # nobody may be removed on this file's word
                unknown_org_rows = True
            else:
                error_orgs.add(found.code)
            continue
        bad: set[str] = set()  # fields refused whole: no further check of them
        for f in cols:
            if (f, i) in broken:
                bad.add(f)
                row_errors.append(
                    RowError(
                        src,
                        rowno,
                        headers[cols[f]],
                        _shown(broken[f, i]),
                        "a line break in the cell; this column holds one line (type it on one "
                        "line, without Alt+Enter)",
                    )
                )
            elif (f, i) in controlled:
                bad.add(f)
                hidden = sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(controlled[f, i])})
                row_errors.append(
                    RowError(
                        src,
                        rowno,
                        headers[cols[f]],
                        _shown(_visible(controlled[f, i])),
                        f"an invisible control character ({', '.join(hidden)}) in the cell; "
                        "retype the value (it usually comes with a copy out of another program)",
                    )
                )
            elif len(v[f]) > (limit := MAX_LENGTH.get(f, MAX_FIELD)):
                bad.add(f)
                err(f, f"{len(v[f])} characters, more than the {limit} this column may have")
        emp = v["employee_number"]
        if "employee_number" in bad:
            pass
        elif not emp:
            err("employee_number", "empty employee number")
        elif (odd := _odd_in_code(emp)) is not None:
            err(
                "employee_number",
                f"{odd} in the employee number: an employee number is plain letters, digits "
                "and signs (A-Z, 0-9, - _ . /); a look-alike or invisible character makes it "
                "another person's — retype it",
            )
        elif emp.casefold() in seen:
            err(
                "employee_number",
                f"duplicate employee number (also on row {seen[emp.casefold()]})"
                + ("" if emp in raw_seen else "; employee numbers compare without case"),
            )
        else:
            seen[emp.casefold()] = rowno
            raw_seen.add(emp)
        if "full_name" in bad:
            pass
        elif i in suspect:
            err("full_name", suspect[i])
        else:
            try:
                parse_name(v["full_name"])
            except SyncdError as exc:
                err("full_name", str(exc))
        org = catalogue.find(v["org"]) if v["org"] and "org" not in bad else None
        if org is None:
            if "org" not in bad:
                err("org", "unknown organisation" if v["org"] else "empty organisation")
            unknown_org_rows = True
        office = None
        if org is not None and v.get("office") and "office" not in bad:
            found = catalogue.find_office(org.code, v["office"])
            if found is None:
                err("office", f"unknown office of {org.code}")
            else:
                office = found.code
        birth = None
        if v.get("birth_date") and "birth_date" not in bad:
            try:
                birth = parse_date(v["birth_date"])
            except ValueError:
                err("birth_date", "unparseable date (use dd/mm/yyyy)")
        status = STATUS_WORDS.get(fold_words(v.get("status", "")))
        if status is None and "status" not in bad:
            err("status", f"unknown status (one of: {', '.join(sorted(STATUS_WORDS)[1:])})")
        dates: dict[str, date | None] = {}
        for f in ("exempt_from", "exempt_until"):
            if f in bad:
                dates[f] = None
                continue
            try:
                dates[f] = parse_date(v.get(f, ""))
            except ValueError:
                err(f, "unparseable date (use dd/mm/yyyy)")
                dates[f] = None
        exemption = None
        if (v.get("exempt_reason") and "exempt_reason" not in bad) or dates.get("exempt_until"):
            start, until = dates.get("exempt_from"), dates.get("exempt_until")
            if until is None:
                if "exempt_until" not in bad:
                    err(
                        "exempt_reason" if "exempt_until" not in cols else "exempt_until",
                        "an absence needs the date it ends",
                    )
            elif start is not None and start > until:
                err("exempt_until", f"ends before it starts ({start:%d/%m/%Y})")
            else:
                exemption = Exemption(
                    emp,
                    v.get("exempt_reason") or "notified absence",
                    start or date.min,
                    until,
                    f"{src}:{rowno}",
                )
        request = REQUEST_WORDS.get(fold_words(v.get("request", "")))
        if request is None and "request" not in bad:
            err("request", "unknown request (cấp mới, cấp lại mật khẩu, thu hồi, khôi phục)")
        elif status is not None and status.leaves and request in KEEP_REQUESTS:
            err(
                "request",
                f"contradicts the status {v.get('status')!r}: a person who leaves gets no "
                "new mailbox, password or restore",
            )
        if row_errors:
            errors += row_errors
            if org is not None:
                error_orgs.add(org.code)
            continue
        assert org is not None and status is not None and request is not None
        people.append(
            Person(
                employee_number=emp,
                full_name=v["full_name"],
                org=org.code,
                office=office,
                title=v.get("title") or None,
                birth_date=birth,
                status=status,
                request=request,
                source=f"{src}:{rowno}",
                exemption=exemption,
            )
        )
    if not people and not errors:
        raise RosterError(
            f"{src}: the roster has no people; an empty roster is refused (it would remove "
            "everyone of its organisations)"
        )
    rejected = bool(errors) and not accept_valid_rows
    authoritative = {p.org for p in people} - error_orgs
    if errors and accept_valid_rows:
        if unknown_org_rows:
            authoritative = set()
            notes.append(
                f"{src}: rows with an unknown organisation were left out, so this file removes "
                "nobody (it cannot say who is missing)"
            )
        elif error_orgs:
            notes.append(
                f"{src}: rows with errors were left out; nobody is removed from "
                f"{', '.join(sorted(error_orgs))}"
            )
    return Snapshot(
        source=src,
        sha256=table.sha256,
        people=() if rejected else tuple(people),
        authoritative=frozenset() if rejected else frozenset(authoritative),
        errors=tuple(errors),
        notes=tuple(notes),
        rejected=rejected,
    )


__all__ = ["read_roster"]
