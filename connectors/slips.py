"""Credential slips (phiếu giao tài khoản): one printable page per person, per organisation.

Why each part is so:

- **One page per person.** Whoever hands the slips out gives each person their own page;
  nobody sees a colleague's password (the old slip was one table per organisation).
- **Durable first, pretty later.** A slip line goes to ``<outbox>/<run>/<org>.csv`` (0600, 0700
  folder) and is fsync'd with the rest of its batch once their passwords are set, before the
  batch's actions count as done: a crash must not lose a password nobody else knows (the
  journal's recovery reads these lines; a password set whose line is not on disk is issued
  again). The printable pages are made at the end of the run from those lines
  (:meth:`SlipWriter.finish`).
- **Delivered to the organisation, to nobody else.** With ``slips.hr_area`` set, each
  organisation's page file is copied to ``<hr_area>/<org>/`` — the folder 0750 and the file
  0640, both of the organisation's own group (``slips.groups``) — so each organisation's HR
  reads its own slips and no other's. An organisation with no group of its own, or a group
  that does not exist, gets nothing delivered (a warning says so; the operator hands its slips
  over from the outbox): never a group other organisations' HR share, which would let every
  one of them read every one-time password.
- **Deleted after ``slips.retention_days``** (default 30) by the daemon's sweep
  (:func:`sweep_slips`), delivered copies and the outbox's run folders alike, each deletion
  audited; a run folder whose run died (its journal is still there) is kept, it is evidence.
- **Look-alike characters.** The one-time password is printed one character per box in a
  monospace face, each box labelled digit / capital / small letter / symbol, so ``0``/``O``,
  ``1``/``l``/``I`` cannot be confused when typed.
"""

from __future__ import annotations

import csv
import grp
import html
import io
import os
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import structlog

from connectors.audit import fsync_dir, open_audit, write_synced
from connectors.config import Config
from connectors.crashpoints import crash_point
from connectors.loading import load_catalogue
from connectors.runlock import RunLock
from connectors.store import private_dir, write_private
from syncd.applier import Slip
from syncd.model import Account, ActionKind, Field, Plan, emp_key
from syncd.orgs import Catalogue
from syncd.regulation import Profile
from syncd.roster import Snapshot

log = structlog.get_logger("syncd.slips")

CSV_HEADER = ["Họ và tên", "Hộp thư", "Mật khẩu tạm thời", "Lý do", "Mã cán bộ", "Phòng/Ban"]
WHY_VI = {
    "create": "cấp mới",
    "create-org-mailbox": "cấp mới (hộp thư cơ quan)",
    "reset-password": "cấp lại mật khẩu",
    "restore": "khôi phục",
}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Spreadsheet-safe: a cell never starts with = + - @ (formula injection)."""
    return "'" + value if value[:1] in _FORMULA else value


def _uncell(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in _FORMULA else value


@dataclass(frozen=True)
class Holder:
    """Who a slip is for, beyond what the applier's :class:`Slip` says."""

    employee_number: str = ""
    office: str = ""  # the office's code in the catalogue


def holders(
    plan: Plan, snapshots: Sequence[Snapshot], accounts: Sequence[Account]
) -> dict[str, Holder]:
    """uid → employee number and office, for every account the plan gives a password: two
    people with one name (``hongst.xtk``, ``hongst1.xtk``) are told apart by the number."""
    offices = {emp_key(p.employee_number): p.office or "" for s in snapshots for p in s.people}
    read = {a.uid: a.office or "" for a in accounts}
    out: dict[str, Holder] = {}
    for a in plan.actions:
        if a.kind not in (ActionKind.CREATE, ActionKind.RESET_PASSWORD, ActionKind.RESTORE):
            continue
        uid = a.new_uid or a.uid
        office = (a.attrs.get(Field.OFFICE) or ("",))[0] or offices.get(
            emp_key(a.employee_number), read.get(a.uid, "")
        )
        out[uid] = Holder(a.employee_number or "", office)
    return out


class SlipWriter:
    """The slips of one run: CSV lines as passwords are set, pages and delivery at the end."""

    def __init__(
        self, outbox: Path, run_id: str, details: Mapping[str, Holder] | None = None
    ) -> None:
        self.outbox = outbox
        self.run_id = run_id
        self.details: dict[str, Holder] = dict(details or {})
        self.slips: list[Slip] = []
        self.warnings: list[str] = []

    @property
    def folder(self) -> Path:
        return self.outbox / self.run_id

    def add(self, slip: Slip) -> None:
        self.add_many([slip])

    def add_many(self, slips: Sequence[Slip]) -> None:
        """A batch's slip lines, durably: each organisation's file written and fsync'd once,
        then the run's folder once when a file was created in it (and the outbox when the
        folder was), so a power loss keeps the names too. Only then do they count as on disk
        (``slip written``, once per line)."""
        fresh_folder = not self.folder.is_dir()
        private_dir(self.folder)
        by_file: dict[Path, list[Slip]] = defaultdict(list)
        for slip in slips:
            by_file[self.folder / f"{slip.org or 'khac'}.csv"].append(slip)
        created = False
        for path, items in by_file.items():
            buf = io.StringIO()
            out = csv.writer(buf)
            if not path.exists():
                created = True
                buf.write("\ufeff")
                out.writerow(CSV_HEADER)
            for slip in items:
                holder = self.details.get(slip.uid, Holder())
                out.writerow(
                    [
                        _cell(slip.full_name),
                        slip.mail,
                        _cell(slip.password),
                        WHY_VI.get(slip.why, slip.why),
                        _cell(holder.employee_number),
                        holder.office,
                    ]
                )
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                write_synced(fd, buf.getvalue().encode("utf-8"), path)  # synced, size and all
            finally:
                os.close(fd)
        if created:
            fsync_dir(self.folder)
        if fresh_folder:
            fsync_dir(self.outbox)
        for slip in slips:
            self.slips.append(slip)
            crash_point("slip written")

    @classmethod
    def resume(cls, outbox: Path, run_id: str) -> SlipWriter:
        """The slips a dead run wrote (its CSV lines), to finish its pages."""
        writer = cls(outbox, run_id)
        why = {v: k for k, v in WHY_VI.items()}
        for path in sorted(writer.folder.glob("*.csv")) if writer.folder.is_dir() else []:
            text = path.read_text(encoding="utf-8-sig")
            if not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]  # a torn last line: that password is lost
            for row in list(csv.reader(io.StringIO(text)))[1:]:
                if len(row) < 4:
                    continue
                name, mail, password, reason = (_uncell(c) for c in row[:4])
                uid = mail.split("@")[0]
                if len(row) >= 6:
                    writer.details[uid] = Holder(_uncell(row[4]), row[5])
                writer.slips.append(
                    Slip(path.stem, uid, mail, name, password, why.get(reason, reason))
                )
        return writer

    def tidy(self) -> None:
        """A dead run's slip files as HR will read them: a last line the crash cut (its
        password never counted as known: it is issued again) is removed, a file left with no
        slip (empty, or its header alone) is deleted (found by an attack: they stayed in the
        folder HR works from)."""
        for path in sorted(self.folder.glob("*.csv")) if self.folder.is_dir() else []:
            data = path.read_bytes()
            whole = data[: data.rfind(b"\n") + 1]
            if whole.count(b"\n") < 2:  # no line after the header
                path.unlink()
            elif whole != data:
                write_private(path, whole)

    def finish(self, config: Config, catalogue: Catalogue | None = None) -> list[Path]:
        """Write each organisation's page file (private copy in the outbox), deliver it to
        the organisation's folder in the HR area, and return every slip file written."""
        catalogue = catalogue or load_catalogue(config.orgs)
        by_org: dict[str, list[Slip]] = defaultdict(list)
        for slip in self.slips:
            by_org[slip.org or "khac"].append(slip)
        written: list[Path] = []
        for org, items in sorted(by_org.items()):
            page = slip_pages(items, org, self.details, config, catalogue, self.run_id)
            private = self.folder / f"{org}.html"
            write_private(private, page)
            written += [self.folder / f"{org}.csv", private]
            delivered = self._deliver(config, org, private)
            if delivered is not None:
                written.append(delivered)
        return written

    def _deliver(self, config: Config, org: str, page: Path) -> Path | None:
        area = config.slips.hr_area
        if area is None:
            return None
        group = config.slips.groups.get(org)
        if group is None:
            why = (
                f"slips for {org} not delivered: slips.groups names no group of its own "
                "(hand them over from the outbox)"
            )
            self.warnings.append(why)
            log.warning("slips not delivered", org=org, group=None)
            return None
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            why = f"slips for {org} not delivered: no group {group!r} on this host (slips.groups)"
            self.warnings.append(why)
            log.warning("slips not delivered", org=org, group=group)
            return None
        folder = area / org
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
        os.chown(folder, -1, gid)
        os.chmod(folder, 0o750)  # noqa: S103 - the organisation's HR group reads its slips
        target = folder / f"phieu-{org}-{self.run_id}.html"
        tmp = folder / f".{target.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
        try:
            os.fchown(fd, -1, gid)
            os.fchmod(fd, 0o640)  # the group is right before a byte is readable by it
            with os.fdopen(fd, "wb") as fh:
                fh.write(page.read_bytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target


# -- the printable page ----------------------------------------------------------------------

_KIND = (
    (str.isdigit, "số", "d"),
    (str.isupper, "HOA", "u"),
    (str.islower, "thường", "l"),
)


@lru_cache(maxsize=512)
def _box(ch: str) -> tuple[str, str]:
    """A character's box and its label's cell (a password has a few dozen distinct ones)."""
    label, cls = next(((lab, c) for test, lab, c in _KIND if test(ch)), ("ký hiệu", "s"))
    return f"<td class='c {cls}'>{html.escape(ch)}</td>", f"<td class='k'>{label}</td>"


def password_boxes(password: str) -> str:
    """One box per character, monospace, labelled digit / capital / small / symbol."""
    boxes = [_box(ch) for ch in password]
    cells = [cell for cell, _ in boxes]
    labels = [label for _, label in boxes]
    return (
        "<table class='pw' aria-label='mật khẩu'><tr>"
        + "".join(cells)
        + "</tr><tr>"
        + "".join(labels)
        + "</tr></table>"
    )


def _rules(profile: Profile) -> str:
    pw = profile.password
    need = [f"ít nhất {pw.min_length} ký tự"]
    if pw.upper:
        need.append("có chữ hoa")
    if pw.lower:
        need.append("có chữ thường")
    if pw.digit:
        need.append("có chữ số")
    if pw.special:
        need.append(f"có ký tự đặc biệt ({' '.join(pw.special)})")
    avoid = []
    if pw.forbid_account:
        avoid.append("tên tài khoản")
    if pw.forbid_name:
        avoid.append("họ tên")
    if pw.forbid_birth_date:
        avoid.append("ngày sinh")
    if pw.forbid_org:
        avoid.append("tên cơ quan, phòng ban")
    text = ", ".join(need)
    if avoid:
        text += "; không chứa " + ", ".join(avoid)
    return f"{text} ({pw.article})"


def first_login(config: Config) -> str:
    """How this directory's person changes the one-time password, in Vietnamese, citing the
    regulation's must-change article.

    Why per directory profile: only Zimbra asks for a new password at the webmail login. AD
    refuses every mail login until the password is changed where Windows allows it (data 773).
    On the OpenLDAP profiles the mail server's login filter refuses the one-time password
    (``pwdReset``), and the webmail's own password page sits behind that same login: the
    person must change it first on a page that binds as them (``slips.first_login_url``,
    docs/mail-server.md "First login"). Telling them "the system will ask you" there would
    only give them "wrong password"."""
    article = config.effective.must_change_article
    url = config.slips.first_login_url
    kind = config.directory.profile
    if kind == "zimbra":
        return (
            "Đăng nhập webmail lần đầu bằng mật khẩu trên; hệ thống yêu cầu đổi mật khẩu ngay, "
            f"trước khi dùng hộp thư ({article})."
        )
    where = (
        f"tại trang đổi mật khẩu {url} (tên đăng nhập, mật khẩu trên, mật khẩu mới)"
        if url
        else "với sự hỗ trợ của người giao phiếu này"
    )
    if kind == "ad":
        where = (
            f"{where}, hoặc tại màn hình đăng nhập Windows của máy tính cơ quan"
            if url
            else "tại màn hình đăng nhập Windows của máy tính cơ quan"
        )
    return (
        f"Trước khi dùng hộp thư, phải đổi mật khẩu trên {where} ({article}). Cho đến khi "
        "đổi, đăng nhập thư (webmail, IMAP, gửi thư) bằng mật khẩu trên sẽ bị từ chối."
    )


_CSS = """
@page{size:%(paper)s portrait;margin:10mm}
body{font-family:'DejaVu Serif','Times New Roman',serif;font-size:10pt;margin:0;color:#000}
.slip{break-after:page;page-break-after:always}
.slip:last-child{break-after:auto;page-break-after:auto}
h1{font-size:12pt;text-align:center;margin:0 0 2mm}
h2{font-size:10.5pt;text-align:center;margin:0 0 3mm;font-weight:normal}
table.f{border-collapse:collapse;width:100%%}
table.f th{text-align:left;width:32%%;font-weight:normal;padding:1mm 0;vertical-align:top}
table.f td{font-weight:bold;padding:1mm 0}
table.pw{border-collapse:separate;border-spacing:1.2mm 0;margin:1mm 0}
table.pw td.c{font-family:'DejaVu Sans Mono','Courier New',monospace;font-size:15pt;
border:1px solid #000;width:7mm;height:8mm;text-align:center}
table.pw td.d{background:#eee}
table.pw td.k{font-size:6pt;text-align:center;font-family:sans-serif}
ol{margin:2mm 0 2mm 5mm;padding:0}
.sign{display:flex;justify-content:space-between;margin-top:4mm;text-align:center}
.sign div{width:45%%}.sign p{margin:0 0 14mm}
@media screen{.slip{border-bottom:2px dashed #888;margin:0 0 8mm;padding:4mm}}
"""


def slip_pages(
    items: Sequence[Slip],
    org: str,
    details: Mapping[str, Holder],
    config: Config,
    catalogue: Catalogue,
    run_id: str,
) -> str:
    """The page file of one organisation: one page (A5 or A4) per person."""
    profile = config.effective
    found = catalogue.orgs.get(org)
    org_name = found.name if found else org
    s = config.slips

    def esc(x: str) -> str:
        return html.escape(x, quote=True)

    # what every page of the file says alike, made once (a page per person: 1,000 per file)
    org_html = esc(org_name)
    steps = (
        "<ol>"
        f"<li>{esc(first_login(config))}</li>"
        f"<li>Mật khẩu mới: {esc(_rules(profile))}.</li>"
        "<li>Không cho người khác biết mật khẩu. Hủy phiếu này sau khi đã đổi mật khẩu.</li>"
        "</ol>"
    )
    pages = []
    for slip in items:
        holder = details.get(slip.uid, Holder())
        office = catalogue.offices.get((org, holder.office)) if holder.office else None
        rows = [
            ("Họ và tên", esc(slip.full_name)),
            ("Mã cán bộ", esc(holder.employee_number) or "—"),
            ("Cơ quan, đơn vị", org_html),
            ("Phòng/Ban", esc(office.name if office else holder.office) or "—"),
            ("Địa chỉ thư điện tử", esc(slip.mail)),
            ("Tên đăng nhập", esc(slip.mail)),
            ("Nội dung", esc(WHY_VI.get(slip.why.split(" ")[0], slip.why))),
        ]
        if s.webmail:
            rows.append(("Trang thư điện tử (webmail)", esc(s.webmail)))
        if s.imap:
            rows.append(("Máy chủ IMAP", esc(s.imap)))
        table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        pages.append(
            "<section class='slip'>"
            "<h1>PHIẾU GIAO TÀI KHOẢN THƯ ĐIỆN TỬ CÔNG VỤ</h1>"
            f"<h2>{org_html}</h2>"
            f"<table class='f'>{table}"
            "<tr><th>Mật khẩu dùng một lần</th><td>"
            f"{password_boxes(slip.password)}</td></tr></table>"
            f"{steps}"
            "<div class='sign'>"
            "<div><p>Người giao<br><i>(ký, ghi rõ họ tên)</i></p></div>"
            "<div><p>Người nhận<br><i>(ký, ghi rõ họ tên, ngày nhận)</i></p></div>"
            "</div></section>"
        )
    return (
        "<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
        f"<title>Phiếu giao tài khoản thư điện tử — {esc(org_name)}</title>"
        f"<style>{_CSS % {'paper': s.paper}}</style></head><body>"
        + "".join(pages)
        + f"<!-- {esc(run_id)} --></body></html>\n"
    )


# -- retention -------------------------------------------------------------------------------


def sweep_slips(config: Config, now: datetime, run_id: str) -> list[Path]:
    """Delete slips older than ``slips.retention_days``: delivered page files and the
    outbox's run folders (a run whose journal is still there died: its folder is kept, the
    recovery reads it). Each deletion is audited; the deleted paths are returned."""
    cutoff = (now - timedelta(days=config.slips.retention_days)).timestamp()
    area = config.slips.hr_area
    delivered = sorted(area.glob("*/phieu-*.html")) if area and area.is_dir() else []
    journals = config.paths.state / "journal"
    runs = sorted(p for p in config.paths.outbox.iterdir()) if config.paths.outbox.is_dir() else []
    old = [p for p in delivered if p.lstat().st_mtime < cutoff]
    old += [
        p
        for p in runs
        if p.is_dir()
        and not p.is_symlink()
        and p.lstat().st_mtime < cutoff
        and not any(journals.glob(f"{p.name}.jsonl"))
    ]
    if not old:
        return []
    # one writer of the audit log at a time: runs, operator commands and this sweep
    with RunLock(config.paths.state, "slip retention", config.daemon.lock_timeout):
        _delete(config, old, run_id)
    return old


def _delete(config: Config, old: Sequence[Path], run_id: str) -> None:
    audit = open_audit(config)
    try:
        for path in old:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            audit.record(
                run_id=run_id,
                action="delete-slips",
                path=str(path),
                reason=f"credential slips older than slips.retention_days "
                f"({config.slips.retention_days} days)",
                result="ok",
            )
    finally:
        audit.close()


__all__ = [
    "CSV_HEADER",
    "Holder",
    "SlipWriter",
    "first_login",
    "holders",
    "password_boxes",
    "slip_pages",
    "sweep_slips",
]
