"""Creates whose answers are lost with the connection (issue 14 follow-up), on the real slapd.

A TCP proxy written here sits between syncd and slapd: it forwards every byte both ways until
slapd has answered ``answered`` account adds; from then on it holds slapd's answers back, and
once slapd has answered ``held`` more (so those adds are applied) it cuts both sides. syncd
then has adds in flight whose outcome it cannot know from the wire: applied and unanswered,
perhaps applied after the cut, or never sent. Each must end with the person holding a slip
whose password opens the mailbox (this run's, or the next run's paying a debt), never a
mailbox whose password nobody knows, never a second mailbox, and a genuine "already exists"
(a hand-made entry, another writer's) must stay a failure.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ldap3 import Connection

from connectors import runner
from connectors.config import Config
from connectors.durable import apply_durably
from connectors.loading import load_catalogue, load_config
from connectors.outcome import RunOutcome, report_text
from connectors.runner import open_directory
from connectors.store import StateStore
from devtools.slapd_sandbox import Sandbox
from syncd.model import ActionKind, Plan
from tests.conftest import MakeConfig
from tests.helpers import create_action, entries, write_roster
from tests.integration.test_crash_recovery import audit_of, slips_of
from tests.integration.test_durability_debts import _reconcile_dying

ADD_REQUEST, ADD_RESPONSE = 0x68, 0x69


def _message(buf: bytearray) -> tuple[bytes, int, int, bytes] | None:
    """The first whole LDAPMessage in ``buf`` (taken out of it): its bytes, message id, the
    operation's tag, and the first bytes of the operation (an add request's DN follows)."""
    if len(buf) < 2:
        return None
    size, head = buf[1], 2
    if size & 0x80:
        n = size & 0x7F
        if len(buf) < 2 + n:
            return None
        size, head = int.from_bytes(buf[2 : 2 + n], "big"), 2 + n
    if len(buf) < head + size:
        return None
    raw = bytes(buf[: head + size])
    del buf[: head + size]
    id_len = raw[head + 1]
    msgid = int.from_bytes(raw[head + 2 : head + 2 + id_len], "big")
    op = head + 2 + id_len
    return raw, msgid, raw[op], raw[op + 1 : op + 64]


class DroppingProxy:
    """Loopback TCP proxy to slapd that loses the answers of adds in flight (see module doc).
    Armed once; with ``then_down`` the cut closes every connection and it refuses new ones
    (the directory unreachable for the rest of the run) until ``heal()``."""

    def __init__(self, upstream: int, answered: int, held: int, then_down: bool = False) -> None:
        self.upstream, self.answered, self.held, self.then_down = (
            upstream,
            answered,
            held,
            then_down,
        )
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen = 0  # answers of account adds slapd sent
        self.cut = threading.Event()
        self.down = False
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def heal(self) -> None:
        self.down = False

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.open += [client, server]
            adds: set[int] = set()
            threading.Thread(target=self._up, args=(client, server, adds), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, adds), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, adds: set[int]) -> None:
        buf = bytearray()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                buf += data
                while (msg := _message(buf)) is not None:
                    raw, msgid, tag, head = msg
                    if tag == ADD_REQUEST and b"uid=" in head[:16]:
                        adds.add(msgid)  # an account's add (not the hash probe's)
                    server.sendall(raw)
        _shut(client, server)

    def _down(self, server: socket.socket, client: socket.socket, adds: set[int]) -> None:
        buf = bytearray()
        holding = 0
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                buf += data
                while (msg := _message(buf)) is not None:
                    raw, msgid, tag, _ = msg
                    if tag == ADD_RESPONSE and msgid in adds and not self.cut.is_set():
                        with self.lock:
                            self.seen += 1
                            late = self.seen > self.answered
                        holding += late
                    if holding:  # this answer and every later one on this connection: lost
                        if holding >= self.held:
                            self.down = self.then_down
                            self.cut.set()
                            # the directory away: every connection goes, not only this one
                            _shut(*(self.open if self.then_down else [client, server]))
                            return
                        continue
                    client.sendall(raw)
        _shut(client, server)


def _shut(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()


@pytest.fixture
def proxy_factory(slapd: Sandbox) -> Iterator[type[DroppingProxy]]:
    made: list[DroppingProxy] = []

    class Made(DroppingProxy):
        def __init__(self, *args: int | bool, **kwargs: int | bool) -> None:
            super().__init__(slapd.port, *args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Made
    for p in made:
        p.close()


def through(cfg_path: Path, proxy: DroppingProxy) -> Config:
    """The test's syncd.yaml pointed at the proxy, with short retry pauses."""
    text = cfg_path.read_text(encoding="utf-8")
    url = next(line for line in text.splitlines() if line.strip().startswith("url:"))
    text = text.replace(url, f"  url: {proxy.url}\n  retry_delays: [0.1, 0.1]")
    cfg_path.write_text(text, encoding="utf-8")
    return load_config(cfg_path)


def _people(n: int) -> list[str]:
    return [f"E{i:03d},Trần Văn Người{i:03d},skhcn,,,,," for i in range(n)]


def _every_account_opens_with_its_newest_slip(
    cfg: Config, slapd: Sandbox, admin: Connection, base_dn: str, people: int
) -> dict[str, str]:
    made = {u: e for u, e in entries(admin, base_dn).items() if e.get("employeeNumber")}
    keys = Counter(e["employeeNumber"][0] for e in made.values())
    assert len(keys) == people and max(keys.values()) == 1  # everyone once, nobody twice
    newest = {uid: pw for _, uid, pw in slips_of(cfg.paths.outbox)}
    for uid in made:
        assert uid in newest, f"{uid}: a mailbox with no slip"
        assert Connection(slapd.url, f"uid={uid},{base_dn}", newest[uid]).bind(), uid
    return newest


def test_adds_whose_answers_are_lost_are_read_back_and_each_person_gets_a_slip_that_opens(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    proxy_factory: type[DroppingProxy],
) -> None:
    people = 40
    make_config()
    proxy = proxy_factory(3, 6)  # 3 answers pass, 6 adds applied with their answers lost
    cfg = through(tmp_path / "syncd.yaml", proxy)
    roster = write_roster(tmp_path / "r.csv", _people(people))
    first = runner.run(cfg, rosters=[roster])
    assert proxy.cut.is_set()
    assert first.exit_code == 0, report_text(first, [roster])
    newest = _every_account_opens_with_its_newest_slip(cfg, slapd, admin, base_dn, people)
    assert len(slips_of(cfg.paths.outbox)) == len(newest)  # one slip each, this run
    records = [r for r in audit_of(cfg.paths.audit_log) if r.get("action", "").startswith("create")]
    assert Counter(r["uid"] for r in records) == Counter(set(newest))  # one record each
    assert all(r["result"] == "ok" and r["one_time_password_issued"] for r in records)
    read_back = [r for r in records if "answer_lost" in r]
    # at least the 6 whose answers slapd sent and the proxy held were applied: each retry was
    # refused as "already exists", and the read-back found this action's entry and password
    confirmed = [r for r in read_back if r["answer_lost"].startswith("read back: created")]
    assert len(confirmed) >= 6, read_back
    assert StateStore(cfg.paths.state).load_debts().passwords == {}
    assert not any((cfg.paths.state / "journal").glob("*.jsonl"))
    again = runner.run(cfg, rosters=[roster])  # nothing owed, nothing created twice
    assert again.plan is not None and again.plan.actions == ()


def test_when_the_directory_stays_away_a_lost_add_is_a_debt_the_next_run_pays_once(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    proxy_factory: type[DroppingProxy],
) -> None:
    people = 30
    make_config()
    proxy = proxy_factory(3, 6, then_down=True)  # after the cut, nothing answers
    cfg = through(tmp_path / "syncd.yaml", proxy)
    roster = write_roster(tmp_path / "r.csv", _people(people))
    first = runner.run(cfg, rosters=[roster])
    assert proxy.cut.is_set() and first.exit_code == 1
    made = {u for u, e in entries(admin, base_dn).items() if e.get("employeeNumber")}
    slipped = {uid for _, uid, _ in slips_of(cfg.paths.outbox)}
    unknown = made - slipped  # applied by slapd, password known to nobody: must be owed
    assert len(unknown) >= 6
    owed = StateStore(cfg.paths.state).load_debts().passwords
    assert unknown <= set(owed), (unknown, owed)
    assert any("answer to a create was lost" in w and min(unknown) in w for w in first.warnings)
    records = audit_of(cfg.paths.audit_log)
    for uid in unknown:
        [rec] = [r for r in records if r.get("uid") == uid]
        assert rec["one_time_password_issued"] is False and "owed" in rec["answer_lost"]

    proxy.heal()
    paid = runner.run(cfg, rosters=[roster])
    assert paid.exit_code == 0, report_text(paid, [roster])
    assert StateStore(cfg.paths.state).load_debts().passwords == {}
    _every_account_opens_with_its_newest_slip(cfg, slapd, admin, base_dn, people)
    per_uid = Counter(uid for _, uid, _ in slips_of(cfg.paths.outbox))
    assert [u for u, n in per_uid.items() if n > 1] == []  # each debt paid once
    again = runner.run(cfg, rosters=[roster])
    assert again.plan is not None and again.plan.actions == ()


def test_a_genuine_already_exists_behind_a_lost_answer_stays_a_failure(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    proxy_factory: type[DroppingProxy],
) -> None:
    """Two entries are there before the adds: one made by hand (the admin), one made by the
    service DN for the same action with another password (another syncd). Their adds are in
    flight when the answers are lost; the read-back finds neither is this action's, while
    every other add (an organisation's mailbox among them: no employee number) is this
    action's, with its slip."""
    now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    direct = make_config()
    proxy = proxy_factory(0, 8)  # every answer lost: each add goes through the read-back
    cfg = through(tmp_path / "syncd.yaml", proxy)
    hand = f"uid=u02,{base_dn}"
    assert admin.add(
        hand,
        ["inetOrgPerson"],
        {"cn": "x", "sn": "x", "uid": "u02", "employeeNumber": "E-u02", "userPassword": "Tay-1!"},
    )
    other = open_directory(direct, [])
    try:
        # same markers, its own password
        other.create(create_action("u03"), "Khac-Mk-1!", since=now)
    finally:
        other.close()
    actions = tuple(
        create_action(f"u{n:02d}", ActionKind.CREATE_ORG_MAILBOX if n == 5 else ActionKind.CREATE)
        for n in range(12)
    )
    outcome = RunOutcome("run-lost-answers")
    directory = open_directory(cfg, [])
    try:
        apply_durably(
            cfg, Plan(actions=actions, now=now), directory, load_catalogue(cfg.orgs), outcome
        )
    finally:
        directory.close()
    assert proxy.cut.is_set()
    result = outcome.result
    assert result is not None
    status = {o.action.uid: o.status.value for o in result.outcomes}
    assert status.pop("u02") == "permanent" and status.pop("u03") == "permanent"
    assert set(status.values()) == {"ok"}
    assert {s.uid for s in result.slips} == set(status) and result.owed_passwords == set()
    records = {r["uid"]: r for r in audit_of(cfg.paths.audit_log)}
    assert records["u02"]["answer_lost"] == "read back: another entry holds the DN"
    assert records["u03"]["answer_lost"] == "read back: another entry holds the DN"
    # both entries untouched: their own passwords still open them
    assert Connection(slapd.url, hand, "Tay-1!").bind()
    assert Connection(slapd.url, f"uid=u03,{base_dn}", "Khac-Mk-1!").bind()
    for slip in result.slips:
        assert Connection(slapd.url, f"uid={slip.uid},{base_dn}", slip.password).bind()
    assert StateStore(cfg.paths.state).load_debts().passwords == {}


def test_a_run_killed_after_recording_a_lost_answer_leaves_the_debt_in_its_journal(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    admin: Connection,
    base_dn: str,
    proxy_factory: type[DroppingProxy],
) -> None:
    """``syncd reconcile`` SIGKILLed right after the batch's end records (``owed`` among
    them) were synced, before the apply saved the debts: the next run finds them in the
    journal it takes over, and pays each once."""
    people = 30
    make_config()
    proxy = proxy_factory(3, 6, then_down=True)
    cfg = through(tmp_path / "syncd.yaml", proxy)
    roster = write_roster(tmp_path / "r.csv", _people(people))
    _reconcile_dying(tmp_path / "syncd.yaml", roster, "batch finished:1")
    assert proxy.cut.is_set()
    journal = cfg.paths.state / "journal"
    assert any('"s": "owed"' in p.read_text("utf-8") for p in journal.glob("*.jsonl"))
    assert StateStore(cfg.paths.state).load_debts().passwords == {}  # not saved: killed
    made = {u for u, e in entries(admin, base_dn).items() if e.get("employeeNumber")}
    unknown = made - {uid for _, uid, _ in slips_of(cfg.paths.outbox)}
    assert len(unknown) >= 6

    proxy.heal()
    paid = runner.run(cfg, rosters=[roster])
    assert paid.exit_code == 0, report_text(paid, [roster])
    assert StateStore(cfg.paths.state).load_debts().passwords == {}
    _every_account_opens_with_its_newest_slip(cfg, slapd, admin, base_dn, people)
    per_uid = Counter(uid for _, uid, _ in slips_of(cfg.paths.outbox))
    assert [u for u, n in per_uid.items() if n > 1] == []
    again = runner.run(cfg, rosters=[roster])
    assert again.plan is not None and again.plan.actions == ()
