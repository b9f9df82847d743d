"""The delta read (connectors/directory_snapshot.py) against a real slapd: a run reads only
what changed since the last, sees every change a full read would see (modify, delete, rename,
a login), and reads everything again when the delta cannot be trusted: a lost snapshot, a last
full read older than a day's run, a directory restored from a backup. A change stamped a
little before the newest CSN seen (clock skew between writers) is caught by the overlap.

Each test compares what the snapshot-backed directory returns with a plain full read of the
same base: the snapshot must never change what a run sees."""

from __future__ import annotations

import itertools
import marshal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_REPLACE, NONE, Connection, Server

from connectors.config import DirectoryConfig
from connectors.directory.openldap import NAMES_SHAPE, OpenLdapDirectory
from connectors.directory_snapshot import (
    BLANK_INDEX,
    CSN_INDEX,
    FULL_EVERY,
    SNAPSHOT_FILE,
    DeltaReader,
    Rows,
)
from connectors.runlock import ChangedMeanwhile
from devtools.slapd_sandbox import Sandbox, find_slapd
from syncd.model import Account, Kind
from syncd.ports import DirectoryError, Scope
from tests.simulation.conftest import FAKETIME_LIB

DOMAIN = "test.gov.vn"
_bases = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed (make test installs it)")
    sandbox = Sandbox(tmp_path_factory.mktemp("delta"), suffix="dc=d,dc=gov,dc=vn")
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def base(server: Sandbox) -> str:
    dn = f"ou=t{next(_bases)},{server.people_dn}"
    with _admin(server) as admin:
        assert admin.add(dn, ["organizationalUnit"], {"ou": dn.split(",")[0][3:]}), admin.result
        for i in range(20):
            _person(admin, dn, f"p{i}.skhcn", f"E{i}")
    return dn


def _admin(server: Sandbox) -> Connection:
    return Connection(
        Server(server.url, get_info=NONE), server.admin_dn, server.admin_password, auto_bind=True
    )


def _person(admin: Connection, base: str, uid: str, emp: str | None) -> str:
    dn = f"uid={uid},{base}"
    attrs = {"uid": uid, "cn": uid, "sn": uid, "ou": "skhcn", "mail": f"{uid}@{DOMAIN}"}
    if emp:
        attrs["employeeNumber"] = emp
    attrs["userPassword"] = "Secret-123x"
    assert admin.add(dn, ["inetOrgPerson"], attrs), admin.result
    return dn


@contextmanager
def _db(snapshot: Path) -> Iterator[sqlite3.Connection]:
    """The snapshot file opened to edit it as a test's scenario needs (committed at the end)."""
    db = sqlite3.connect(snapshot)
    try:
        with db:
            yield db
    finally:
        db.close()


def _directory(server: Sandbox, base: str) -> OpenLdapDirectory:
    cfg = DirectoryConfig(url=server.url, bind_dn=server.service_dn, base_dn=base)
    return OpenLdapDirectory(cfg, server.service_password, DOMAIN)


def _by_dn(accounts: list[Account]) -> list[Account]:
    return sorted(accounts, key=lambda a: a.dn.lower())


def _read(
    server: Sandbox, base: str, snapshot: Path | None
) -> tuple[str, list[Account], list[Account]]:
    """How the read went, the namespace and the accounts, as a run reads them."""
    directory = _directory(server, base)
    try:
        if snapshot is not None:
            assert directory.use_snapshot(snapshot)
        names = _by_dn(directory.names())
        accounts = _by_dn(directory.read(Scope()))
        return directory.last_read, names, accounts
    finally:
        directory.close()


def _scoped(server: Sandbox, base: str, snapshot: Path) -> tuple[str, list[Any]]:
    """How a scoped run's namespace read went (``last_read``), and its names by DN."""
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names = _by_dn(directory.names())  # type: ignore[arg-type]
        return directory.last_read, names
    finally:
        directory.close()


def _same_as_full(server: Sandbox, base: str, snapshot: Path) -> str:
    how, names, accounts = _read(server, base, snapshot)
    _, truth_names, truth_accounts = _read(server, base, None)
    assert names == truth_names
    assert accounts == truth_accounts
    return how


def test_a_second_run_reads_only_what_changed_and_sees_every_change(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / "state" / SNAPSHOT_FILE
    assert _same_as_full(server, base, snapshot).startswith("full: no usable snapshot")
    assert oct(snapshot.stat().st_mode & 0o777) == "0o600"
    assert _same_as_full(server, base, snapshot).startswith("delta: 0 changed, 0 gone")
    with _admin(server) as admin:
        assert admin.modify(f"uid=p1.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Phó"])]})
        assert admin.delete(f"uid=p2.skhcn,{base}")
        assert admin.modify_dn(f"uid=p3.skhcn,{base}", "uid=p3.syt")
        _person(admin, base, "legacy", None)
    # a login changes the entry too (lastbind's authTimestamp, ppolicy's pwdLastSuccess)
    assert Connection(
        Server(server.url, get_info=NONE), f"uid=p4.skhcn,{base}", "Secret-123x"
    ).bind()
    how = _same_as_full(server, base, snapshot)
    assert how.startswith("delta: 4 changed, 2 gone"), how  # p3.skhcn is p3.syt now
    _, _, accounts = _read(server, base, snapshot)
    assert {a.uid for a in accounts} >= {"p3.syt", "legacy"}
    assert "p2.skhcn" not in {a.uid for a in accounts}
    assert next(a for a in accounts if a.uid == "p4.skhcn").last_login is not None


def test_a_lost_or_unreadable_snapshot_means_one_full_read(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    snapshot.unlink()
    assert _same_as_full(server, base, snapshot).startswith("full: no usable snapshot")
    snapshot.write_text("{not json", encoding="utf-8")
    assert _same_as_full(server, base, snapshot).startswith("full: no usable snapshot")
    assert _same_as_full(server, base, snapshot).startswith("delta:")


def test_a_damaged_snapshot_means_one_full_read_not_a_failing_run_for_ever(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Found by an attack: pages overwritten in the middle of the file (the header and the
    meta row intact) made every run fail with "database disk image is malformed" until an
    operator deleted the file."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()
        (page,) = db.execute("PRAGMA page_size").fetchone()
    with snapshot.open("r+b") as fh:  # the entries' root page: garbage
        fh.seek((root - 1) * page)
        fh.write(bytes(range(256)) * (page // 256))
    damaged = snapshot.read_bytes()
    # a scoped run's namespace: the whole read instead, which writes a sound file
    how, names = _scoped(server, base, snapshot)
    assert how.startswith("full: the snapshot is damaged"), how
    assert names == _read(server, base, None)[1]
    assert _same_as_full(server, base, snapshot).startswith("delta:")
    # a whole run the same
    snapshot.write_bytes(damaged)
    assert _same_as_full(server, base, snapshot).startswith("full: the snapshot is damaged")
    assert _same_as_full(server, base, snapshot).startswith("delta:")


@pytest.mark.parametrize("keep", [True, False], ids=["a run", "a plan"])
def test_a_page_the_window_check_never_reads_found_damaged_by_a_scoped_run_means_a_whole_read(
    tmp_path: Path, keep: bool
) -> None:
    """Issue 14: the window check reads the CSN index and the window's rows only, not every
    page of the table. A scoped run that then finds a damaged page while decoding its
    namespace reads whole at once (as one whose check found it), not a failed run; a run
    replaces the damaged file, a plan leaves it as it is (found by an attack: a plan removed
    it; "syncd plan changes nothing on disk"). The entries are made an hour "ago"
    (libfaketime) so that only the last one is in the window."""
    server = _people_an_hour_ago(tmp_path, "dc=d,dc=gov,dc=vn", 120)
    try:
        base = server.people_dn
        _restart(server)  # on time
        with _admin(server) as admin:
            _person(admin, base, "zz.late", None)  # the window's only entry; its key sorts last
        snapshot = tmp_path / SNAPSHOT_FILE
        _same_as_full(server, base, snapshot)
        with _db(snapshot) as db:
            db.execute("DROP TABLE name_count")  # no names cache: the rows are decoded
            (page,) = db.execute("PRAGMA page_size").fetchone()
            (first,) = db.execute(
                "SELECT min(pageno) FROM dbstat WHERE name = 'entries' AND pagetype = 'leaf'"
            ).fetchone()
        with snapshot.open("r+b") as fh:  # the first keys' page: garbage
            fh.seek((first - 1) * page)
            fh.write(bytes(range(256)) * (page // 256))
        damaged = snapshot.read_bytes()
        directory = _directory(server, base)
        try:
            assert directory.use_snapshot(snapshot, keep=keep, scoped=True)
            names = _by_dn(directory.names())  # type: ignore[arg-type]
            how = directory.last_read
            accounts = directory.read(Scope(orgs={"skhcn"}, employee_numbers={"E7"}))
        finally:
            directory.close()
        _, truth, _ = _read(server, base, None)
        assert how.startswith("full: the snapshot is damaged"), how
        assert names == truth and len(names) == 121
        assert "a007.skhcn" in {a.uid for a in accounts}
        if keep:
            assert _same_as_full(server, base, snapshot).startswith("delta:")  # a sound file
        else:
            assert snapshot.read_bytes() == damaged
    finally:
        server.stop()


def test_a_damaged_page_no_check_reads_stops_that_run_once_and_the_next_reads_whole(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """A row too long for its page keeps its tail on overflow pages, which no check reads
    (the CSNs come first in a row). A whole run that meets one damaged while it decodes the
    names or the accounts stops as a failed directory read, retried (exit 1, never an
    internal error); the file is removed, and the next run reads whole and writes a sound
    one."""
    with _admin(server) as admin:
        dn = _person(admin, base, "long.skhcn", "E77")
        assert admin.modify(dn, {"title": [(MODIFY_REPLACE, ["Chuyên viên " * 400])]})
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    assert _overwrite_pages(snapshot, "entries", "overflow"), "the long row has overflow pages"
    _a_whole_run_stops_once_and_the_next_reads_whole(server, base, snapshot)
    with _admin(server) as admin:
        assert admin.delete(dn)


@pytest.mark.parametrize("keep", [True, False], ids=["a run", "a plan"])
def test_a_snapshot_another_syncd_holds_locked_is_not_taken_for_damaged(
    server: Sandbox, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    """Found by an attack: "database is locked" (another process holding the file past the
    wait) was taken for a damaged page while the rows were decoded, and the file another
    syncd was writing was removed. The read stops as a directory read to retry instead."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "late0", None)
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        db.execute("DROP TABLE name_count")  # no names cache: the rows are decoded
    monkeypatch.setattr("connectors.directory_snapshot.BUSY_MS", 200)
    writer = sqlite3.connect(snapshot, isolation_level=None)
    checked = DeltaReader.cached_names

    def then_locked(self: DeltaReader, shape: str) -> Any:
        writer.execute("BEGIN EXCLUSIVE")  # another syncd committing, past the wait
        return checked(self, shape)

    monkeypatch.setattr(DeltaReader, "cached_names", then_locked)
    inode = snapshot.stat().st_ino
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, keep=keep, scoped=True)
        with pytest.raises(DirectoryError, match="in use by another syncd") as stopped:
            list(directory.names())
        assert stopped.value.transient
    finally:
        directory.close()
        writer.execute("ROLLBACK")
        writer.close()
    assert snapshot.stat().st_ino == inode


def test_the_window_check_reads_the_csn_index_which_a_whole_run_adds_to_an_older_file(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Issue 14: the newest entries come from the CSN indexes, not a scan of every row (~90 MB
    at 100k); no other read uses them (partial: a damaged page of a covering index failed
    every run, found by an attack). A file without them (an older syncd's) is still read
    right, by a scan, and the next whole run that keeps the snapshot adds them."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)

    def plan(db: sqlite3.Connection, sql: str) -> str:
        return str(db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())

    with _db(snapshot) as db:
        assert CSN_INDEX in plan(db, NEWEST), plan(db, NEWEST)
        assert BLANK_INDEX in plan(db, "SELECT 1 FROM entries WHERE csn = '' LIMIT 1")
        for other in ("SELECT count(*) FROM entries", "SELECT key, csn FROM entries"):
            assert "INDEX" not in plan(db, other), plan(db, other)
        db.execute(f"DROP INDEX {CSN_INDEX}")
        db.execute(f"DROP INDEX {BLANK_INDEX}")
    with _admin(server) as admin:
        _person(admin, base, "late2", None)
    how, names = _scoped(server, base, snapshot)  # read-only: scanned, not indexed
    assert how.startswith("recent:") and "late2" in {n.uid for n in names}, how
    _, truth, _ = _read(server, base, None)
    assert names == truth
    _same_as_full(server, base, snapshot)  # a whole run: the indexes again
    with _db(snapshot) as db:
        assert CSN_INDEX in plan(db, NEWEST)


NEWEST = "SELECT key, csn FROM entries WHERE csn > '' ORDER BY csn DESC LIMIT 3"


def _overwrite_pages(snapshot: Path, name: str, kind: str = "%") -> list[int]:
    """Every page of the table or index ``name`` (of the ``kind``: "leaf", "overflow"…):
    garbage; which they were."""
    with _db(snapshot) as db:
        (size,) = db.execute("PRAGMA page_size").fetchone()
        pages = [
            p
            for (p,) in db.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype LIKE ?", (name, kind)
            )
        ]
    with snapshot.open("r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size)
            fh.write(bytes(range(256)) * (size // 256))
    return pages


def _a_whole_run_stops_once_and_the_next_reads_whole(
    server: Sandbox, base: str, snapshot: Path
) -> None:
    """A whole run meeting a damaged page no check read stops as a failed directory read,
    retried (exit 1, never an internal error); the file goes and the next run reads whole."""
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot)
        with pytest.raises(DirectoryError, match="snapshot is damaged") as stopped:
            directory.names()
            directory.read(Scope())
        assert stopped.value.transient
    finally:
        directory.close()
    assert not snapshot.exists()
    assert _same_as_full(server, base, snapshot).startswith("full: no usable snapshot")


def test_a_damaged_csn_index_means_one_whole_read_never_a_failing_run(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Found by an attack: with every page of the CSN index overwritten, every run, plan and
    check exited 70 (a count of the rows read the covering index, outside the damage's
    handling) until the nightly full read. The window check meets it and reads whole once,
    writing a sound file; a whole run, whose own read never touches the index, runs as
    usual."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "late3", None)
    _same_as_full(server, base, snapshot)
    _overwrite_pages(snapshot, CSN_INDEX)
    damaged = snapshot.read_bytes()
    how, names = _scoped(server, base, snapshot)
    assert how.startswith("full: the snapshot is damaged"), how
    assert names == _read(server, base, None)[1]
    assert _scoped(server, base, snapshot)[0].startswith("recent:")
    snapshot.write_bytes(damaged)  # a whole run: its own read never touches the index
    assert _same_as_full(server, base, snapshot).startswith("delta:")
    # which the next scoped run meets: one whole read, which writes a sound file
    assert _scoped(server, base, snapshot)[0].startswith("full: the snapshot is damaged")
    assert _scoped(server, base, snapshot)[0].startswith("recent:")


def test_a_damaged_covering_index_made_by_hand_stops_one_run_never_every_run(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Found by an attack: an index covering the whole table (the first CSN index of
    2026-11-27, or one made by hand) is what SQLite counts the rows from; one damaged page of
    it failed every whole run and plan with exit 70, the count being outside the damage's
    handling. This syncd replaces an ``entries_csn`` of another definition, and a damaged
    index of another name stops one run (retried, exit 1) and the file goes."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        db.execute(f"DROP INDEX {CSN_INDEX}")
        db.execute(f"CREATE INDEX {CSN_INDEX} ON entries (csn)")  # the first one's definition
        db.execute("CREATE INDEX by_hand ON entries (csn)")
    with _admin(server) as admin:
        _person(admin, base, "late4", None)
    _same_as_full(server, base, snapshot)  # a whole run that keeps it: entries_csn made again
    with _db(snapshot) as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (CSN_INDEX,)).fetchone()
        assert sql.endswith("WHERE csn > ''"), sql
    _overwrite_pages(snapshot, "by_hand")
    _a_whole_run_stops_once_and_the_next_reads_whole(server, base, snapshot)


def test_a_csn_index_that_disagrees_with_its_rows_means_a_whole_read(tmp_path: Path) -> None:
    """Found by an attack: an index forged by hand (``writable_schema``) holding a row the
    table does not, dated now, moved the window past an entry written after the snapshot,
    and the scoped run's namespace lacked it. The index's newest rows are looked up in the
    table: when they disagree, the whole read."""
    server = _people_an_hour_ago(tmp_path, "dc=f,dc=gov,dc=vn", 20)
    try:
        base = server.people_dn
        snapshot = tmp_path / SNAPSHOT_FILE
        _same_as_full(server, base, snapshot)
        with _admin(server) as admin:  # after the snapshot, an hour "ago"
            _person(admin, base, "gap.skhcn", "E99")
        _restart(server)
        with _admin(server) as admin:
            late = _person(admin, base, "zz.late", None)
            admin.search(late, "(objectClass=*)", search_scope="BASE", attributes=["entryCSN"])
            csn = str(admin.response[0]["attributes"]["entryCSN"][0])
        with _db(snapshot) as db:  # the row in the index, then out of the table only
            row = db.execute("SELECT names, rest FROM entries LIMIT 1").fetchone()
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?)", (late.lower(), late, csn, *row)
            )
            (root, sql) = db.execute(
                "SELECT rootpage, sql FROM sqlite_master WHERE name = ?", (CSN_INDEX,)
            ).fetchone()
            db.execute("PRAGMA writable_schema = ON")
            db.execute("DELETE FROM sqlite_master WHERE name = ?", (CSN_INDEX,))
        with _db(snapshot) as db:
            db.execute("DELETE FROM entries WHERE key = ?", (late.lower(),))
        with _db(snapshot) as db:
            db.execute("PRAGMA writable_schema = ON")
            db.execute(
                "INSERT INTO sqlite_master VALUES ('index', ?, 'entries', ?, ?)",
                (CSN_INDEX, root, sql),
            )
        with _db(snapshot) as db:
            assert db.execute(NEWEST).fetchone()[1] == csn  # the forged row
        how, names = _scoped(server, base, snapshot)
        _, truth, _ = _read(server, base, None)
    finally:
        server.stop()
    assert how.startswith("full: the snapshot is damaged"), how
    assert "gap.skhcn" in {n.uid for n in names}
    assert names == truth


def test_a_linked_snapshot_is_never_followed_and_a_readable_one_made_private(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Found by an attack: a link to a file elsewhere was read and written in place, and a
    snapshot chmod'ed 0644 stayed so."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    snapshot.chmod(0o644)
    assert _same_as_full(server, base, snapshot).startswith("delta:")
    assert snapshot.stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere.sqlite"
    snapshot.rename(elsewhere)
    before = elsewhere.read_bytes()
    snapshot.symlink_to(elsewhere)
    assert _same_as_full(server, base, snapshot).startswith("full: no usable snapshot")
    assert not snapshot.is_symlink() and elsewhere.read_bytes() == before


def test_the_first_run_a_day_after_the_last_full_read_reads_everything(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:  # as if the last full read was then
        db.execute("UPDATE meta SET full_at = full_at - ?", (FULL_EVERY.total_seconds() + 60,))
    assert _same_as_full(server, base, snapshot).startswith("full: the last full read is older")
    assert _same_as_full(server, base, snapshot).startswith("delta:")


def test_a_change_stamped_before_the_newest_csn_seen_is_still_read(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Clock skew: a writer whose clock is behind stamps its change before the newest CSN the
    last run saw. Made here by giving the snapshot an entry (since deleted) stamped a day
    ahead, as a writer with a fast clock would have: a delta read "since the newest CSN"
    would then miss the change to p5; each entry's CSN compared with its own copy's does not."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    fast = f"uid=p6.skhcn,{base}"
    ahead = datetime.now(UTC) + timedelta(days=1)
    with _db(snapshot) as db:
        db.execute(
            "UPDATE entries SET csn = ? WHERE key = ?",
            (ahead.strftime("%Y%m%d%H%M%S.000000Z#000000#000#000000"), fast.lower()),
        )
    with _admin(server) as admin:
        assert admin.delete(fast)
        assert admin.modify(f"uid=p5.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Trưởng"])]})
    how = _same_as_full(server, base, snapshot)
    assert how.startswith("delta: 1 changed, 1 gone"), how
    _, _, accounts = _read(server, base, snapshot)
    assert next(a for a in accounts if a.uid == "p5.skhcn").title == "Trưởng"


def test_a_directory_restored_from_a_backup_is_read_in_full(tmp_path: Path) -> None:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed (make test installs it)")
    server = Sandbox(tmp_path / "slapd", suffix="dc=r,dc=gov,dc=vn")
    server.start()
    try:
        base = server.people_dn
        with _admin(server) as admin:
            for i in range(5):
                _person(admin, base, f"p{i}.skhcn", f"E{i}")
        backup = tmp_path / "backup.ldif"
        conf = str(server.root / "slapd.d")
        slapcat = str(find_slapd().with_name("slapcat"))  # type: ignore[union-attr]
        with backup.open("w") as fh:
            subprocess.run([slapcat, "-F", conf, "-n1"], stdout=fh, check=True)
        time.sleep(1.1)  # the changes after the backup carry newer CSNs
        snapshot = tmp_path / SNAPSHOT_FILE
        with _admin(server) as admin:
            assert admin.modify(f"uid=p1.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Mới"])]})
            assert admin.delete(f"uid=p2.skhcn,{base}")
        _same_as_full(server, base, snapshot)  # the snapshot knows the newer state
        server.stop()
        data = server.root / "data"
        for f in data.iterdir():
            f.unlink()
        slapadd = str(find_slapd().with_name("slapadd"))  # type: ignore[union-attr]
        subprocess.run([slapadd, "-F", conf, "-n1", "-l", str(backup)], check=True)
        server.start()
        how = _same_as_full(server, base, snapshot)
        assert how.startswith("full:") and "restored backup" in how, how
        _, _, accounts = _read(server, base, snapshot)
        assert "p2.skhcn" in {a.uid for a in accounts}  # back, as the backup has it
    finally:
        server.stop()


def test_a_scoped_run_takes_its_namespace_from_the_snapshot_and_what_changed_lately(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """One organisation's file needs every name of the base, not a whole read: the snapshot
    and one indexed search of what changed since its newest CSN (less the overlap)."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "moi.tgg", "T1")  # a name given out by someone else meanwhile
        assert admin.delete(f"uid=p7.skhcn,{base}")
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names = {a.uid for a in directory.names()}
        assert directory.last_read.startswith("recent:"), directory.last_read
        scoped = {a.uid for a in directory.read(Scope(orgs={"tgg"}, employee_numbers={"E1"}))}
    finally:
        directory.close()
    assert "moi.tgg" in names
    assert "p7.skhcn" in names  # deleted: stays reserved until the next whole read (safe)
    assert scoped == {"moi.tgg", "p1.skhcn"}  # the accounts themselves come from the server


def test_a_scoped_run_sees_a_name_written_after_the_last_whole_read_on_a_server_far_behind(
    tmp_path: Path,
) -> None:
    """The window of a scoped run's namespace is counted from the server's own clock (the
    newest CSN the snapshot holds), never from this host's: a slapd 20 minutes behind this host
    (libfaketime) stamps a name given out by hand after the last whole read 20 minutes "before"
    it. A window counted from when that read began, by this host's clock, missed such a name,
    and a scoped run gave it out a second time (found by an attack on a window so counted)."""
    if find_slapd() is None or not FAKETIME_LIB.exists():
        pytest.skip("Debian slapd and libfaketime are needed (make test installs them)")
    server = Sandbox(tmp_path / "slapd", suffix="dc=b,dc=gov,dc=vn")
    behind = {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": "-20m"}
    server.start(env={**behind, "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    try:
        base = server.people_dn
        with _admin(server) as admin:
            for i in range(3):
                _person(admin, base, f"p{i}.skhcn", f"E{i}")
        how, names = _hand_added_after_a_whole_read(server, tmp_path)
    finally:
        server.stop()
    assert how.startswith("recent:"), how
    assert "moi.tgg" in {n.uid for n in names}


def test_a_scoped_run_after_a_day_of_logins_reads_the_window_names_in_one_search(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Every login writes a new entryCSN (ppolicy's pwdLastSuccess), so late in a working day
    most of a scoped run's window changed since the snapshot. Its names are then read in one
    search of the window, not fetched entry by entry with exact entryCSN terms (slow to build
    in ldap3, and every attribute decoded where the namespace needs its names); the namespace
    is the same: a name changed, added or deleted by hand meanwhile included."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    for i in range(15):  # a login each
        user = f"uid=p{i}.skhcn,{base}"
        with Connection(Server(server.url, get_info=NONE), user, "Secret-123x", auto_bind=True):
            pass
    with _admin(server) as admin:
        assert admin.modify(
            f"uid=p3.skhcn,{base}", {"mail": [(MODIFY_REPLACE, [f"ba.skhcn@{DOMAIN}"])]}
        )
        _person(admin, base, "moi.tgg", None)
        assert admin.delete(f"uid=p16.skhcn,{base}")
    directory = _directory(server, base)
    searched: list[str] = []
    search = directory._search

    def recorded(flt: str, attributes: list[str]) -> Iterator[tuple[str, Any]]:
        searched.append(flt)
        yield from search(flt, attributes)

    directory._search = recorded  # type: ignore[method-assign]
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names = _by_dn(directory.names())
        how = directory.last_read
    finally:
        directory.close()
    assert how.startswith("recent: 16 changed of 20"), how  # 15 logins and moi.tgg
    assert not [f for f in searched if "(entryCSN=" in f]  # no exact terms
    _, truth, _ = _read(server, base, None)
    deleted = [n for n in names if n.uid == "p16.skhcn"]  # reserved until a whole read
    assert names == _by_dn([*truth, *deleted])
    assert f"ba.skhcn@{DOMAIN}" in next(n for n in names if n.uid == "p3.skhcn").mail


@pytest.mark.parametrize("cache", [True, False], ids=["names-cache", "rows-decoded"])
def test_a_scoped_run_makes_the_same_names_from_the_snapshot_as_a_plain_read(
    server: Sandbox, base: str, tmp_path: Path, cache: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scoped run's namespace, made from the snapshot (the names the last whole run kept
    in its cache, or its rows decoded) and the window's overlay, is what a plain read makes
    of every kind of entry: a uid only, an address only, several addresses, unmanaged, an
    organisation mailbox, a name holding a comma; those the snapshot holds and those changed
    since."""
    with _admin(server) as admin:
        assert admin.add(f"uid=svc,{base}", ["account"], {"uid": "svc"}), admin.result
        assert admin.add(
            f"cn=postmaster,{base}",
            ["organizationalRole", "extensibleObject"],
            {"cn": "postmaster", "mail": [f"postmaster@{DOMAIN}", f"pm@{DOMAIN}"]},
        ), admin.result
        moved = f"uid=p4.skhcn,{base}"
        assert admin.modify(moved, {"mail": [(MODIFY_REPLACE, [f"a@{DOMAIN}", f"b@{DOMAIN}"])]})
        assert admin.modify(
            f"uid=p5.skhcn,{base}",
            {
                "objectClass": [(MODIFY_ADD, ["syncdAccount"])],
                "syncdManaged": [(MODIFY_REPLACE, ["FALSE"])],
                "cn": [(MODIFY_REPLACE, ["Nông, Đạt"])],
            },
        ), admin.result
        assert admin.modify(
            f"uid=p6.skhcn,{base}",
            {
                "objectClass": [(MODIFY_ADD, ["syncdAccount"])],
                "syncdKind": [(MODIFY_REPLACE, ["organisation"])],
                "syncdAlias": [(MODIFY_REPLACE, [f"cu.skhcn@{DOMAIN} 20270101000000Z"])],
            },
        ), admin.result
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:  # changed after the snapshot: from the window's overlay
        assert admin.modify(f"uid=p7.skhcn,{base}", {"mail": [(MODIFY_ADD, [f"c@{DOMAIN}"])]})
        assert admin.modify(
            f"uid=p6.skhcn,{base}", {"syncdManaged": [(MODIFY_REPLACE, ["FALSE"])]}
        ), admin.result
    if cache:  # the rows are not decoded at all

        def refuse(_: Rows) -> None:
            raise AssertionError("rows decoded although the names cache holds them")

        monkeypatch.setattr(Rows, "names", refuse)
    else:
        with _db(snapshot) as db:
            db.execute("DROP TABLE name_parts")
    how, names = _scoped(server, base, snapshot)
    monkeypatch.undo()
    assert how.startswith("recent: 2 changed"), how
    _, truth, _ = _read(server, base, None)
    assert names == truth
    by_uid = {n.uid: n for n in names}
    assert by_uid["p6.skhcn"].kind is Kind.ORGANISATION and not by_uid["p6.skhcn"].managed
    assert by_uid["p5.skhcn"].cn == "Nông, Đạt" and not by_uid["p5.skhcn"].managed
    assert by_uid[""].mail == (f"postmaster@{DOMAIN}", f"pm@{DOMAIN}")


@pytest.mark.parametrize("cache", [True, False], ids=["names-cache", "rows-decoded"])
def test_a_scoped_read_frees_the_names_of_its_people_deleted_since_the_last_whole_read(
    server: Sandbox, base: str, tmp_path: Path, cache: bool
) -> None:
    """An entry of a person in scope deleted by hand since the last whole read leaves the
    namespace when the scoped read finds no account for that person, as a whole read's would
    not have it: the plan gives the person's own name back. The names of others deleted stay
    reserved until the next whole read; an entry whose employee number changed is still
    there and keeps its name."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        assert admin.delete(f"uid=p3.skhcn,{base}")  # in scope
        assert admin.delete(f"uid=p4.skhcn,{base}")  # nobody asked for E4
        changed = f"uid=p8.skhcn,{base}"
        assert admin.modify(changed, {"employeeNumber": [(MODIFY_REPLACE, ["X8"])]})
    if not cache:
        with _db(snapshot) as db:
            db.execute("DROP TABLE name_parts")
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names = directory.names()
        scope = Scope(orgs={"tgg"}, employee_numbers={"E1", "E3", "E8"})
        accounts = {a.uid for a in directory.read(scope)}
        held = {n.uid for n in names}
        how = directory.last_read
    finally:
        directory.close()
    assert how.startswith("recent:"), how
    assert accounts == {"p1.skhcn"}
    assert "p3.skhcn" not in held
    assert {"p1.skhcn", "p4.skhcn", "p8.skhcn"} <= held


def test_a_scoped_run_tells_names_deleted_since_the_snapshot_from_names_held_as_old_addresses(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """The names a scoped plan gave a uid past are checked on the server
    (``deleted_names``): a deleted entry's name is told; a name held only as an old address
    (``syncdAlias``, no index to search) or by an entry still there is not, so it never
    makes a run read the names whole for nothing."""
    with _admin(server) as admin:
        assert admin.modify(
            f"uid=p2.skhcn,{base}",
            {
                "objectClass": [(MODIFY_ADD, ["syncdAccount"])],
                "syncdAlias": [(MODIFY_REPLACE, [f"cu.skhcn@{DOMAIN} 20991231000000Z"])],
            },
        ), admin.result
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        assert admin.delete(f"uid=p3.skhcn,{base}")
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names = directory.names()
        assert directory.last_read.startswith("recent:"), directory.last_read
        asked = ["cu.skhcn", "p3.skhcn", "p4.skhcn", "P3.SKHCN"]
        deleted = directory.deleted_names(asked, names)
    finally:
        directory.close()
    assert deleted == ["p3.skhcn"]


def test_a_scoped_read_takes_unchanged_accounts_from_the_snapshot_and_the_rest_from_the_server(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """A scoped run's own accounts: the same indexed searches, asking each entry's CSN only;
    an account the snapshot holds at that CSN is taken from it, any other (changed, new) is
    read in full, and one deleted since is not there. What it returns is what a plain scoped
    read returns; only the changed and the new account crossed the wire in full."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        assert admin.modify(f"uid=p1.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Phó"])]})
        assert admin.delete(f"uid=p3.skhcn,{base}")
        _person(admin, base, "moi.skhcn", "E99")
    scope = Scope(orgs={"skhcn"}, employee_numbers={"E1", "E99", "E5"})
    directory = _directory(server, base)
    in_full: list[str] = []
    search = directory._search

    def counted(flt: str, attributes: list[str]) -> Iterator[tuple[str, Any]]:
        for dn, attrs in search(flt, attributes):
            if attributes != ["entryCSN"]:
                in_full.append(dn)
            yield dn, attrs

    directory._search = counted  # type: ignore[method-assign]
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        directory.names()
        in_full.clear()  # the namespace's own window: another test's business
        scoped = _by_dn(directory.read(scope))
    finally:
        directory.close()
    plain = _directory(server, base)
    try:
        truth = _by_dn(plain.read(scope))
    finally:
        plain.close()
    assert scoped == truth
    assert "p3.skhcn" not in {a.uid for a in scoped}
    assert next(a for a in scoped if a.uid == "p1.skhcn").title == "Phó"
    assert sorted(dn.split(",")[0] for dn in in_full) == ["uid=moi.skhcn", "uid=p1.skhcn"]


def test_a_names_cache_of_other_rows_is_never_used(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Rows written without the cache rewritten (an older syncd, a run that died between the
    two): the cache's digest of keys and CSNs no longer matches and the rows are decoded. (A
    row's values change only with its CSN: the delta writes an entry as read at its CSN.)"""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        assert db.execute("SELECT count(*) FROM name_parts").fetchone() == (1,)
        db.execute(
            "UPDATE entries SET names = replace(names, 'p3.skhcn', 'zz.skhcn'), csn = csn || '0' "
            "WHERE names LIKE '%p3.skhcn%'"
        )
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        names: list[Any] = list(directory.names())
        assert directory._delta is not None and directory._delta.cached_names(NAMES_SHAPE) is None
    finally:
        directory.close()
    _, truth, _ = _read(server, base, None)  # the changed row's entry is read again
    assert _by_dn(names) == truth


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM entries WHERE names LIKE '%p3.skhcn%'",
        "INSERT INTO entries SELECT key || 'x', dn, csn, names, rest FROM entries LIMIT 1",
        "UPDATE entries SET rest = rest WHERE names LIKE '%p3.skhcn%'",  # even a no-op write
        # found by an attack: without its triggers the count misses every write after
        "DROP TRIGGER entries_insert",
    ],
    ids=["delete", "insert", "update", "a trigger dropped"],
)
def test_any_write_of_the_rows_outdates_the_names_cache(
    server: Sandbox, base: str, tmp_path: Path, statement: str
) -> None:
    """The cache is keyed by a count of the rows' writes kept by triggers in the file itself
    (not a digest of 100,000 rows read at every scoped run): whoever writes a row, with
    whatever statement, moves it."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        directory.names()
        assert directory._delta is not None and directory._delta.cached_names(NAMES_SHAPE)
    finally:
        directory.close()
    with _db(snapshot) as db:
        db.execute(statement)
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        directory.names()
        assert directory._delta is not None and directory._delta.cached_names(NAMES_SHAPE) is None
    finally:
        directory.close()


def test_a_names_cache_emptied_or_cut_by_hand_is_not_used(
    server: Sandbox, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: parts emptied by hand with the key left as it was gave a scoped
    run an empty namespace (a held address given again). The parts must hold the Names the
    whole run counted."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        db.execute("UPDATE name_parts SET blob = ?", (marshal.dumps([[]] * 8),))
    _, names = _scoped(server, base, snapshot)
    _, truth, _ = _read(server, base, None)
    assert names == truth and len(names) == 20


def test_a_scoped_read_from_the_names_cache_decodes_no_name_and_finds_what_a_plain_one_finds(
    server: Sandbox, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entries a scoped read looks for in the namespace (no employee number; an address of
    the organisation kept after a transfer) come from the cache's terms, also when one of them
    changed after the snapshot; the namespace itself is decoded only when a step gives out a
    name (the uid pool), and then holds every name."""
    snapshot = tmp_path / SNAPSHOT_FILE
    with _admin(server) as admin:
        _person(admin, base, "legacy", None)  # no employee number: asked for by uid
        moved = _person(admin, base, "q1.stc", "E31")  # carries an skhcn address: asked for
        assert admin.modify(
            moved,
            {"mail": [(MODIFY_ADD, [f"q1.skhcn@{DOMAIN}"])], "ou": [(MODIFY_REPLACE, ["stc"])]},
        )
        other = _person(admin, base, "q2.stc", "E32")  # neither: not asked for
        assert admin.modify(other, {"ou": [(MODIFY_REPLACE, ["stc"])]})
    _same_as_full(server, base, snapshot)  # the whole run that keeps the cache and its terms
    with _admin(server) as admin:  # after the snapshot: from the window's overlay
        _person(admin, base, "late", None)
        assert admin.modify(moved, {"title": [(MODIFY_REPLACE, ["Phó"])]})
    scope = Scope(orgs={"skhcn"}, employee_numbers={"E1", "E5"})
    plain = _directory(server, base)
    try:
        truth = _by_dn(plain.read(scope))
        truth_names = _by_dn(plain.names())  # type: ignore[arg-type]
    finally:
        plain.close()
    assert {"legacy", "q1.stc", "late"} <= {a.uid for a in truth}
    assert "q2.stc" not in {a.uid for a in truth}

    def refuse(*_: Any) -> None:
        raise AssertionError("the namespace was decoded")

    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        with monkeypatch.context() as patch:
            patch.setattr("connectors.directory.openldap._names_of_parts", refuse)
            patch.setattr(Rows, "names", refuse)
            namespace = directory.names()
            assert _by_dn(directory.read(scope)) == truth
        assert _by_dn(list(namespace)) == truth_names  # type: ignore[arg-type]
    finally:
        directory.close()


def test_a_plan_decoding_the_cache_after_a_whole_run_rewrote_it_stops_and_never_loses_a_name(
    server: Sandbox, base: str, tmp_path: Path
) -> None:
    """Found by an attack: a plan (no run lock) decoded the cache after a whole run had
    rewritten it; the rows it fell back to lacked a name deleted since, which that run had
    kept for its person in a state the plan had not loaded. The plan reads the parts only when
    it decodes them; if the file was written since its check, it stops rather
    than decode the newer rows (run it again). Not rewritten, the same late decoding holds
    every name."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "late0", None)  # one change: the window is live
    _same_as_full(server, base, snapshot)
    _, truth = _scoped(server, base, snapshot)
    directory = _directory(server, base)
    try:  # nothing written between the check and the decoding: every name
        assert directory.use_snapshot(snapshot, keep=False, scoped=True)
        namespace = directory.names()
        assert _by_dn(list(namespace)) == truth  # type: ignore[arg-type]
    finally:
        directory.close()
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, keep=False, scoped=True)
        namespace = directory.names()
        with _admin(server) as admin:  # meanwhile: deleted by hand, and a whole run
            assert admin.delete(f"uid=p3.skhcn,{base}"), admin.result
        assert _read(server, base, snapshot)[0].startswith("delta:")
        with pytest.raises(ChangedMeanwhile, match="run it again"):
            list(namespace)
    finally:
        directory.close()


def test_a_plan_that_gives_out_no_name_reads_no_part_of_the_names_cache(
    server: Sandbox, base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: a plan of one organisation's file reads the window and its own entries; the
    namespace's parts (~10 MB at 100k) are read only if a step gives out a name."""
    snapshot = tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "late1", None)
    _same_as_full(server, base, snapshot)
    opened: list[str] = []
    parts = DeltaReader._parts

    def counted(db: Any, key: str) -> Iterator[bytes]:
        opened.append(key)
        yield from parts(db, key)

    monkeypatch.setattr(DeltaReader, "_parts", staticmethod(counted))
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, keep=False, scoped=True)
        namespace = directory.names()
        directory.read(Scope(orgs={"skhcn"}, employee_numbers={"E1"}))
        assert opened == []
        assert "late1" in {n.uid for n in namespace}  # decoded when asked for
        assert len(opened) == 1
    finally:
        directory.close()


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM name_terms WHERE suffix = ''",
        "UPDATE name_terms SET blob = :empty WHERE suffix = ''",  # well formed, emptied
        "UPDATE name_terms SET blob = substr(blob, 1, 9)",  # cut short
    ],
    ids=["a row deleted", "a blob emptied", "a blob cut"],
)
def test_name_terms_damaged_by_hand_are_not_used(
    server: Sandbox, base: str, tmp_path: Path, damage: str
) -> None:
    """Found by an attack: the "" row (entries without an employee number) deleted by hand
    let a scoped read miss an unkeyed mailbox, and a second one was made for its owner. The
    rows must be all there and each hold the entries written; else the namespace is
    scanned."""
    snapshot = tmp_path / SNAPSHOT_FILE
    with _admin(server) as admin:
        _person(admin, base, "legacy", None)
        admin.modify(f"uid=legacy,{base}", {"ou": [(MODIFY_REPLACE, ["stc"])]})
    _same_as_full(server, base, snapshot)
    with _db(snapshot) as db:
        db.execute(damage, {"empty": marshal.dumps([[], [], []])} if ":empty" in damage else {})
    scope = Scope(orgs={"skhcn"}, employee_numbers={"E1"})
    plain = _directory(server, base)
    try:
        truth = _by_dn(plain.read(scope))
    finally:
        plain.close()
    assert "legacy" in {a.uid for a in truth}
    directory = _directory(server, base)
    try:
        assert directory.use_snapshot(snapshot, scoped=True)
        directory.names()
        assert _by_dn(directory.read(scope)) == truth
    finally:
        directory.close()


def test_the_names_a_scoped_plan_gives_out_are_looked_up_in_every_address_attribute(
    server: Sandbox, base: str
) -> None:
    """Found by an attack: iredmail keeps a transferred person's old address in
    shadowAddress, which the lookup did not search; and names in other letter case."""
    from connectors.config import DirectoryConfig as Cfg
    from connectors.directory import profile

    with _admin(server) as admin:
        assert admin.add(
            f"uid=x.old,{base}",
            ["inetOrgPerson", "extensibleObject"],
            {"uid": "x.old", "cn": "x", "sn": "x", "mail": f"x.old@{DOMAIN}",
             "shadowAddress": f"an.nv@{DOMAIN}"},
        ), admin.result  # fmt: skip
    cfg = Cfg(url=server.url, bind_dn=server.service_dn, base_dn=base, profile="iredmail")
    directory = profile("iredmail")(cfg, server.service_password, DOMAIN)
    assert isinstance(directory, OpenLdapDirectory)
    try:
        found = directory.holders(["an.nv", f"AN.NV@{DOMAIN}", "X.Old", "nobody"])
    finally:
        directory.close()
    holder = f"uid=x.old,{base}".lower()
    assert found == {"an.nv": holder, f"an.nv@{DOMAIN}": holder, "x.old": holder}


def _hand_added_after_a_whole_read(server: Sandbox, tmp_path: Path) -> tuple[str, list[Any]]:
    """A whole read, then ``moi.tgg`` added by hand: how the scoped run's namespace read
    went, and its names."""
    base, snapshot = server.people_dn, tmp_path / SNAPSHOT_FILE
    _same_as_full(server, base, snapshot)
    with _admin(server) as admin:
        _person(admin, base, "moi.tgg", None)
    return _scoped(server, base, snapshot)


def _faked(root: Path, suffix: str, offset: str) -> Sandbox:
    """A slapd whose clock is ``offset`` (libfaketime: "+1d", "-1h") off this host's."""
    if find_slapd() is None or not FAKETIME_LIB.exists():
        pytest.skip("Debian slapd and libfaketime are needed (make test installs them)")
    server = Sandbox(root, suffix=suffix)
    server.start(env={"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": offset,
                      "FAKETIME_DONT_FAKE_MONOTONIC": "1"})  # fmt: skip
    return server


def _people_an_hour_ago(tmp_path: Path, suffix: str, count: int) -> Sandbox:
    """A slapd an hour behind (libfaketime) holding ``count`` people a000.skhcn… (E0…): older
    than any scoped run's window once the slapd is back on time."""
    server = _faked(tmp_path / "slapd", suffix, "-1h")
    with _admin(server) as admin:
        for i in range(count):
            _person(admin, server.people_dn, f"a{i:03d}.skhcn", f"E{i}")
    return server


def _restart(server: Sandbox) -> None:
    """The same slapd again, on this host's time."""
    server.stop()
    server.start()


def test_a_scoped_run_reads_whole_when_the_snapshot_holds_a_change_dated_ahead(
    tmp_path: Path,
) -> None:
    """Found by an attack: slapd run once with its clock a day ahead left an entry dated
    tomorrow; back on time, every entry written since fell before the window counted from
    that newest CSN, and a scoped run gave a second mailbox to a person whose older one it
    never saw. A newest CSN ahead of this host's clock now means the whole read."""
    server = _faked(tmp_path / "slapd", "dc=a,dc=gov,dc=vn", "+1d")
    try:
        base = server.people_dn
        with _admin(server) as admin:
            for i in range(4):  # the snapshot's newest, all dated tomorrow
                _person(admin, base, f"p{i}.skhcn", f"E{i}")
        _restart(server)  # the clock put right
        how, names = _hand_added_after_a_whole_read(server, tmp_path)
    finally:
        server.stop()
    assert not how.startswith("recent:"), how
    assert "moi.tgg" in {n.uid for n in names}


def test_a_scoped_run_after_one_change_in_a_quiet_directory_reads_only_the_window(
    tmp_path: Path,
) -> None:
    """Found by the benchmark: the newest change of a quiet directory is alone (this morning's,
    the one before it from yesterday), so the snapshot's second and third newest entries are
    older than the window. They were required in it, so every scoped run read the whole
    namespace and warned of a restored backup. Only the newest entries dated within the window
    must be in it (the restored backup below is still found by the newest one)."""
    server = _faked(tmp_path / "slapd", "dc=q,dc=gov,dc=vn", "-1h")
    try:
        base = server.people_dn
        with _admin(server) as admin:
            for i in range(3):
                _person(admin, base, f"p{i}.skhcn", f"E{i}")
        _restart(server)  # an hour later
        with _admin(server) as admin:
            assert admin.modify(f"uid=p1.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Mới"])]})
        snapshot = tmp_path / SNAPSHOT_FILE
        _same_as_full(server, base, snapshot)
        with _admin(server) as admin:
            _person(admin, base, "moi.tgg", None)  # a name given out by hand meanwhile
        how, names = _scoped(server, base, snapshot)
    finally:
        server.stop()
    assert how.startswith("recent:"), how
    assert {"moi.tgg", "p0.skhcn", "p1.skhcn", "p2.skhcn"} <= {n.uid for n in names}


def test_a_scoped_run_reads_whole_after_a_backup_older_than_its_window_is_restored(
    tmp_path: Path,
) -> None:
    """Found by an attack: a backup brought back an entry deleted since, its CSN older than
    the window, and a scoped run's namespace (the snapshot plus the window) did not have it.
    The snapshot's newest entries are in the window unless the directory went back: then the
    whole read. The backup is made an hour "ago" (libfaketime) so its CSNs are older than
    the window."""
    server = _faked(tmp_path / "slapd", "dc=k,dc=gov,dc=vn", "-1h")
    try:
        base = server.people_dn
        with _admin(server) as admin:
            for i in range(3):
                _person(admin, base, f"p{i}.skhcn", f"E{i}")
            _person(admin, base, "cu.tgg", None)  # a mailbox made by hand, in the backup
        backup = tmp_path / "backup.ldif"
        conf = str(server.root / "slapd.d")
        slapcat = str(find_slapd().with_name("slapcat"))  # type: ignore[union-attr]
        with backup.open("w") as fh:
            subprocess.run([slapcat, "-F", conf, "-n1"], stdout=fh, check=True)
        _restart(server)  # on time
        with _admin(server) as admin:
            assert admin.delete(f"uid=cu.tgg,{base}")
            assert admin.modify(f"uid=p1.skhcn,{base}", {"title": [(MODIFY_REPLACE, ["Mới"])]})
        snapshot = tmp_path / SNAPSHOT_FILE
        _same_as_full(server, base, snapshot)  # no cu.tgg; p1 the newest
        server.stop()
        for f in (server.root / "data").iterdir():
            f.unlink()
        slapadd = str(find_slapd().with_name("slapadd"))  # type: ignore[union-attr]
        subprocess.run([slapadd, "-F", conf, "-n1", "-l", str(backup)], check=True)
        server.start()
        how, names = _scoped(server, base, snapshot)
    finally:
        server.stop()
    assert not how.startswith("recent:"), how
    assert "cu.tgg" in {n.uid for n in names}
