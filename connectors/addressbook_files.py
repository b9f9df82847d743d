"""The published address lists (``syncd addressbook``): XLSX, CSV, vCard and HTML.

What is listed is :mod:`syncd.addressbook`'s; here it is written the way each reader opens it:
CSV in UTF-8 with a byte-order mark (Excel on Windows reads Vietnamese only then), vCard 3.0
in UTF-8 through ``vobject`` (phones and mail clients import it), XLSX, and an HTML page an
organisation can put on its portal as it is (Hưng Yên Đ11.5).
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path

import vobject

from connectors.config import Config
from connectors.loading import load_catalogue
from connectors.roster.workbooks import Sheet, safe_cell, workbook_bytes
from connectors.runner import close_directory, open_directory
from connectors.store import write_private
from connectors.usage_report import published_folder
from syncd.addressbook import Book, Entry, build
from syncd.errors import SyncdError
from syncd.model import Kind
from syncd.ports import Scope

FORMATS = ("xlsx", "csv", "vcf", "html")


class AddressBookError(SyncdError):
    """An address list asked for something the configuration does not know."""


HEADER = ("Họ và tên / Tên hộp thư", "Địa chỉ thư điện tử", "Phòng/Ban", "Chức vụ")


def _row(e: Entry) -> list[str]:
    return [e.name, e.address, e.office, e.title]


def as_csv(book: Book) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for e in book.entries:
        writer.writerow([safe_cell(v) for v in _row(e)])
    return out.getvalue().encode("utf-8-sig")


def as_vcf(book: Book) -> bytes:
    cards = []
    for e in book.entries:
        card = vobject.vCard()
        card.add("fn").value = e.name
        words = e.name.split(" ")
        if e.kind is Kind.PERSON and len(words) > 1:
            # Vietnamese order: family name first, given name last
            card.add("n").value = vobject.vcard.Name(
                family=words[0], given=words[-1], additional=" ".join(words[1:-1])
            )
        else:
            card.add("n").value = vobject.vcard.Name(family=e.name)
        mail = card.add("email")
        mail.value = e.address
        mail.type_param = "INTERNET"
        card.add("org").value = [book.name, *([e.office] if e.office else [])]
        if e.title:
            card.add("title").value = e.title
        if e.kind is Kind.ORGANISATION:
            # vCard 3.0 has no KIND (4.0's); mail clients show this card as an organisation
            card.add("x-abshowas").value = "COMPANY"
        cards.append(card.serialize())
    return "".join(cards).encode("utf-8")


def as_xlsx(book: Book, article: str) -> bytes:
    lead = [f"DANH BẠ THƯ ĐIỆN TỬ CÔNG VỤ — {book.name.upper()}", f"Căn cứ: {article}"]
    return workbook_bytes([Sheet("Danh bạ", HEADER, [_row(e) for e in book.entries], lead)])


def as_html(book: Book, article: str) -> bytes:
    esc = html.escape
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in _row(e)) + "</tr>" for e in book.entries
    )
    page = (
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
        f"<title>Danh bạ thư điện tử — {esc(book.name)}</title><style>"
        "body{font-family:'Times New Roman',serif;margin:1.5em}"
        "table{border-collapse:collapse}th,td{border:1px solid #555;padding:3px 8px}"
        "th{background:#ddebf7}</style></head><body>"
        f"<h1>Danh bạ thư điện tử công vụ — {esc(book.name)}</h1>"
        f"<p>Căn cứ: {esc(article)}; {len(book.entries)} địa chỉ.</p>"
        "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in HEADER) + f"</tr>{rows}</table>"
        "</body></html>"
    )
    return page.encode("utf-8")


def render(book: Book, fmt: str, article: str) -> bytes:
    if fmt == "csv":
        return as_csv(book)
    if fmt == "vcf":
        return as_vcf(book)
    if fmt == "xlsx":
        return as_xlsx(book, article)
    if fmt == "html":
        return as_html(book, article)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def write_books(
    books: Sequence[Book],
    folder: Path,
    formats: Sequence[str],
    article: str,
    ours: Path | None,
) -> list[Path]:
    """``danhba-<org>.<format>`` for each book, replaced whole (readers never see half);
    ``folder`` made public (0755) when it is syncd's (under ``ours``, ``publish.folder``)."""
    written = []
    published_folder(folder, 0o755, None, ours)  # public: anybody may read the address lists
    for book in books:
        for fmt in formats:
            path = folder / f"danhba-{book.code}.{fmt}"
            write_private(path, render(book, fmt, article), mode=0o644)
            written.append(path)
    return written


def publish(
    config: Config, only: str | None, formats: Sequence[str] | None, folder: Path | None
) -> list[Path]:
    """``syncd addressbook``: read the directory, write each organisation's list."""
    catalogue = load_catalogue(config.orgs)
    if only is not None and only not in catalogue.orgs:
        raise AddressBookError(f"--org {only!r}: no such organisation in {config.orgs}")
    profile = config.effective
    directory = open_directory(config, [])
    try:
        accounts = directory.read(Scope())
    finally:
        close_directory(directory)
    books = build(
        catalogue,
        accounts,
        config.domain,
        profile.lifecycle.locked_receives_mail.value,
        only,
    )
    article = profile.reports.address_list or profile.title
    target = folder or (config.publish.folder / "danhba" if config.publish.folder else Path("."))
    formats = formats or config.publish.addressbook_formats
    return write_books(books, target, formats, article, config.publish.folder)
