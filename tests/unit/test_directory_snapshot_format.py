"""The delta read's snapshot on disk (connectors/directory_snapshot.py, format 3): every value
comes back exactly as the directory gave it, whatever characters it holds; what a run read
since is laid over the file's rows; and a run never holds the whole directory as attributes
(the 650-990 MiB peak of format 2 at 100,000 entries, issue 14).

Pure unit tests: the directory is a function yielding entries (the search a profile passes
in), the snapshot a SQLite file in a temp directory. The real slapd cases are in
tests/integration/test_delta_read.py."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from connectors.directory_snapshot import (
    BATCH,
    CSN,
    SNAPSHOT_FILE,
    DeltaReader,
    _decode,
    _encode,
    _rows_of,
)

NAMES = ["uid", "cn", "mail", "employeeNumber", "syncdManaged", "syncdKind"]
STAMPS = ["syncdStateSince", "syncdActiveSince", "createTimestamp", "pwdChangedTime"]
OTHERS = ["sn", "givenName", "ou", "departmentNumber", "title", "syncdState", "pwdReset"]
ATTRIBUTES = [*NAMES, *OTHERS, *STAMPS, "objectClass", CSN]  # as a profile reads an account

value = st.text(min_size=0, max_size=12)  # any code point, separators and "" included
values = st.one_of(st.none(), st.lists(value, min_size=0, max_size=3))


@given(st.lists(values, min_size=len(ATTRIBUTES), max_size=len(ATTRIBUTES)))
def test_every_value_comes_back_as_the_directory_gave_it(groups: list[list[str] | None]) -> None:
    attrs = {a: v for a, v in zip(ATTRIBUTES, groups, strict=True) if v is not None}
    expected = {a: v for a, v in attrs.items() if v}  # an attribute without values is absent
    assert _decode(_encode(attrs, ATTRIBUTES), ATTRIBUTES) == expected


def test_values_holding_the_separators_or_empty_fall_back_to_json() -> None:
    tricky = {"uid": ["a\x1eb"], "cn": ["x\x1fy", ""], "mail": ["\x1dz"], "title": ["["]}
    text = _encode(tricky, ATTRIBUTES)
    assert text.startswith("\x1d")
    assert _decode(text, ATTRIBUTES) == tricky
    plain = {"uid": ["hungdv.skhcn"], "mail": ["a@x.vn", "b@x.vn"], "cn": ["Đỗ Văn Hùng"]}
    assert _decode(_encode(plain, ATTRIBUTES), ATTRIBUTES) == plain
    assert not _encode(plain, ATTRIBUTES).startswith("\x1d")  # the short form when it can


def _entry(i: int, csn: str = "20261126000000.000000Z#000000#000#000000") -> dict[str, Any]:
    return {
        "uid": [f"user{i:06d}.dv{i % 100:03d}"],
        "cn": [f"Nguyễn Văn Người Thứ {i}"],
        "mail": [f"user{i:06d}.dv{i % 100:03d}@bench.gov.vn"],
        "employeeNumber": [f"E{i:06d}"],
        "syncdManaged": ["TRUE"],
        "syncdKind": ["person"],
        "sn": ["Nguyễn"],
        "givenName": [f"Người Thứ {i}"],
        "ou": [f"dv{i % 100:03d}"],
        "departmentNumber": ["Phòng Công nghệ thông tin"],
        "title": ["Chuyên viên chính phụ trách công nghệ thông tin"],
        "syncdState": ["active"],
        "pwdReset": ["TRUE"],
        **{stamp: [f"2026{i % 12 + 1:02d}01000000Z"] for stamp in STAMPS},
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson", "syncdAccount"],
        CSN: [csn],
    }


class Directory:
    """Entries by DN, searched as a profile's paged search would yield them."""

    def __init__(self, entries: Mapping[str, dict[str, Any]]) -> None:
        self.entries = dict(entries)

    def search(self, flt: str, attributes: list[str]) -> Iterator[tuple[str, Mapping[str, Any]]]:
        wanted = None
        if f"({CSN}=" in flt:  # the delta's exact terms
            wanted = {t.split(")")[0] for t in flt.split(f"({CSN}=")[1:]}
        for dn, attrs in self.entries.items():
            if wanted is None or attrs[CSN][0] in wanted:
                yield dn, {a: v for a, v in attrs.items() if a in attributes}


def _reader(path: Path, directory: Directory, *, keep: bool = True) -> DeltaReader:
    return DeltaReader(
        path,
        "ou=people,dc=x",
        directory.search,
        "(uid=*)",
        ATTRIBUTES,
        clock=lambda: 1_800_000_000.0,
        keep=keep,
        names=NAMES,
    )


def _people(n: int) -> dict[str, dict[str, Any]]:
    return {f"uid=user{i:06d},ou=people,dc=x": _entry(i) for i in range(n)}


def test_a_whole_read_never_holds_every_entry_as_attributes(tmp_path: Path) -> None:
    """10,000 entries held as attribute dicts take tens of MB (format 2 held them all, and
    its JSON text beside them); read through the snapshot, each is decoded when reached and
    dropped, so the peak stays a small fraction of that, for the full read and the delta."""
    directory = Directory(_people(10_000))
    held = _size_of_all(directory)
    path = tmp_path / SNAPSHOT_FILE
    for how in ("full", "delta"):
        tracemalloc.start()
        reader = _reader(path, directory)
        rows = reader.sync()
        count = sum(1 for _ in rows) + sum(1 for _ in rows.names())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert reader.how.startswith(how), reader.how
        assert count == 20_000
        assert peak < held / 4, (how, peak, held)


def _size_of_all(directory: Directory) -> int:
    tracemalloc.start()
    kept = [
        (dn, {a: list(v) for a, v in at.items()}) for dn, at in directory.search("", ATTRIBUTES)
    ]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(kept) == len(directory.entries)
    return size


def test_what_changed_since_is_laid_over_the_rows_and_a_plan_writes_nothing(
    tmp_path: Path,
) -> None:
    people = _people(40)
    directory = Directory(people)
    path = tmp_path / SNAPSHOT_FILE
    _reader(path, directory).sync()
    before = path.read_bytes()
    changed = "uid=user000001,ou=people,dc=x"
    directory.entries[changed] = {
        **_entry(1, "20261126000001.000000Z#000000#000#000000"),
        "title": ["Trưởng phòng"],
    }
    del directory.entries["uid=user000002,ou=people,dc=x"]
    directory.entries["uid=new,ou=people,dc=x"] = _entry(99, "20261126000002.0Z#0#000#0")

    plan = _reader(path, directory, keep=False)
    seen = dict(plan.sync())
    assert plan.how.startswith("delta: 2 changed, 1 gone"), plan.how
    assert seen == {dn: _as_read(a) for dn, a in directory.entries.items()}
    assert dict(plan.sync().names()) == {
        dn: {k: v for k, v in _as_read(a).items() if k in NAMES}
        for dn, a in directory.entries.items()
    }
    assert path.read_bytes() == before  # a plan changes nothing on disk
    assert sorted(p.name for p in tmp_path.iterdir()) == [SNAPSHOT_FILE]

    run = _reader(path, directory)
    assert dict(run.sync()) == seen
    assert run.how.startswith("delta: 2 changed, 1 gone"), run.how  # the plan kept nothing
    again = _reader(path, directory)
    assert dict(again.sync()) == seen
    assert again.how.startswith("delta: 0 changed, 0 gone"), again.how  # the run kept it


def _as_read(attrs: Mapping[str, Any]) -> dict[str, list[str]]:
    return {k: list(v) for k, v in attrs.items() if k != CSN}


def test_a_plan_without_a_snapshot_reads_in_memory_and_creates_no_file(tmp_path: Path) -> None:
    directory = Directory(_people(10))
    plan = _reader(tmp_path / "state" / SNAPSHOT_FILE, directory, keep=False)
    assert len(dict(plan.sync())) == 10
    assert plan.how == "full: no usable snapshot"
    assert not (tmp_path / "state").exists()


def test_a_format_2_snapshot_is_ignored_and_removed_by_the_next_one_written(
    tmp_path: Path,
) -> None:
    """What an older syncd left (JSON dicts of every entry, ``directory-snapshot.json``) is
    never trusted: one full read, which writes format 3 and removes it (it holds the
    directory's personal data for nothing). The same JSON at the new name is unreadable, and
    read past the same way."""
    people = _people(5)
    old = tmp_path / "directory-snapshot.json"
    legacy = {
        "format": 2,
        "base": "ou=people,dc=x",
        "attributes": ATTRIBUTES,
        "full_at": 1_800_000_000.0,
        "entries": {dn: {**a, "title": ["stale"]} for dn, a in people.items()},
    }
    old.write_text(json.dumps(legacy), encoding="utf-8")
    path = tmp_path / SNAPSHOT_FILE
    path.write_text(json.dumps(legacy), encoding="utf-8")
    reader = _reader(path, Directory(people))
    rows = dict(reader.sync())
    assert reader.how == "full: no usable snapshot"
    assert {a["title"][0] for a in rows.values()} == {
        "Chuyên viên chính phụ trách công nghệ thông tin"
    }
    assert not old.exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = _reader(path, Directory(people))
    second.sync()
    assert second.how.startswith("delta: 0 changed, 0 gone, 5 checked"), second.how


def test_rows_are_looked_up_by_key_in_batches_and_absent_keys_are_left_out() -> None:
    """The window's and a scoped read's lookups ask the snapshot BATCH keys per query: every
    held key comes back once with its columns, across batch boundaries, and a key the snapshot
    does not hold (an entry new since) is simply not there."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, csn TEXT, dn TEXT) WITHOUT ROWID")
    held = {f"uid=p{i},ou=x": f"csn{i}" for i in range(2 * BATCH + 1)}
    db.executemany("INSERT INTO entries VALUES (?, ?, ?)", ((k, c, k) for k, c in held.items()))
    asked = [*held, "uid=new,ou=x", *(f"uid=gone{i},ou=x" for i in range(BATCH))]
    found = list(_rows_of(db, asked, "csn, dn"))
    assert len(found) == len(held)
    assert dict(found) == {k: (c, k) for k, c in held.items()}
