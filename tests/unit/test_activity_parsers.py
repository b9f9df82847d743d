"""The activity parsers and the incremental log reader, on files written here.

The lines are copied from what Postfix 3.7 and Dovecot 2.3 wrote on the test machine
(tests/integration/test_activity_sources.py makes them write it for real); these tests pin the
rules that real servers cannot be made to show on demand: the year of a December line read in
January, rotation, compression, truncation, and a position that no longer matches anything.
"""

from __future__ import annotations

import gzip
import json
import os
import zoneinfo
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.activity import collect
from connectors.activity.dovecot_dict import DovecotDictSource, key_address, unix_time
from connectors.activity.follow import Follower
from connectors.activity.mail_log import MailLogSource, syslog_time
from connectors.config import ConfigError, parse_config
from connectors.lifecycle_files import InputFileError
from syncd.model import Account, Kind, State
from syncd.plan.lifecycle import activity_reference, counts

ZONE = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
DOMAIN = "test.gov.vn"
SEND = (
    "{ts} mail postfix/smtpd[30705]: 79BB32241BC: client=localhost[127.0.0.1], "
    "sasl_method=PLAIN, sasl_username={user}\n"
)
RECEIVE = (
    "{ts} mail postfix/virtual[30709]: 7B0082241BD: to=<{user}>, relay=virtual, delay=0.02, "
    "delays=0/0.02/0/0, dsn=2.0.0, status=sent (delivered to maildir)\n"
)
LOGIN = (
    "{ts} imap-login: Info: Login: user=<{user}>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, "
    "mpid=29931, secured, session=<SvRYEilhoq5/AAAB>\n"
)
NOISE = "{ts} mail postfix/qmgr[30639]: 79BB32241BC: removed\n"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE).astimezone(UTC)  # type: ignore[misc]


def touch(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def source(path: Path, state: Path) -> MailLogSource:
    return MailLogSource(
        path, "mail log", frozenset({"login", "send", "receive"}), ZONE, DOMAIN, state
    )


def new_lines(follower: Follower) -> list[str]:
    return [line.text for line in follower.lines()]


def test_a_december_line_in_a_file_last_written_in_january_is_of_the_year_before(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        RECEIVE.format(ts="Dec 31 23:59:50", user="hungdv.skhcn@test.gov.vn")
        + SEND.format(ts="Jan  1 00:00:10", user="maitl.skhcn")
    )
    touch(log, local(2027, 1, 1, 0, 1))
    seen = source(log, tmp_path / "state").last_activity()
    assert seen == {
        "hungdv.skhcn@test.gov.vn": {"receive (mail log)": local(2026, 12, 31, 23, 59, 50)},
        # a SASL user without a domain is a person of the configured domain
        "maitl.skhcn@test.gov.vn": {"send (mail log)": local(2027, 1, 1, 0, 0, 10)},
    }


def test_syslog_stamps_are_read_in_the_configured_zone_and_rfc3339_ones_in_their_own() -> None:
    mtime = local(2026, 11, 26, 8, 0)
    assert syslog_time("Nov 26 07:42:05 mail x", mtime, ZONE) == datetime(
        2026, 11, 26, 0, 42, 5, tzinfo=UTC
    )
    assert syslog_time("Nov  6 07:42:05.123456 mail x", mtime, ZONE) == datetime(
        2026, 11, 6, 0, 42, 5, tzinfo=UTC
    )
    assert syslog_time("2026-11-26T07:42:05.5+00:00 mail x", mtime, ZONE) == datetime(
        2026, 11, 26, 7, 42, 5, 500000, tzinfo=UTC
    )
    # 29 February in a file of 2029: the last leap year
    assert syslog_time("Feb 29 10:00:00 x", local(2029, 3, 1), ZONE) == local(2028, 2, 29, 10)


def test_each_profile_counts_only_the_kinds_its_article_names(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        LOGIN.format(ts="Nov 20 09:00:00", user="hungdv.skhcn")
        + RECEIVE.format(ts="Nov 10 09:00:00", user="hungdv.skhcn@test.gov.vn")
        + NOISE.format(ts="Nov 21 09:00:00")
    )
    touch(log, local(2026, 11, 26))
    activity, kinds = collect([source(log, tmp_path / "state")])
    acc = Account(
        dn="uid=hungdv.skhcn",
        uid="hungdv.skhcn",
        mail=("hungdv.skhcn@test.gov.vn",),
        state=State.ACTIVE,
        kind=Kind.PERSON,
        managed=True,
    )
    login = activity_reference(acc, activity, ("login",))
    assert login == (local(2026, 11, 20, 9), "last login (mail log)")
    mail = activity_reference(acc, activity, ("send", "receive"))
    assert mail == (local(2026, 11, 10, 9), "last receive (mail log)")
    assert counts("receive (mail log)", ("send", "receive"))
    assert not counts("login (mail log)", ("send", "receive"))
    assert kinds == {"login", "send", "receive"}


def test_dovecot_deliveries_and_rfc3339_syslog_lines_are_read_too(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 26 07:42:16 mail dovecot: lmtp(maitl.skhcn@test.gov.vn)<31363><Z81PFilhfoR/AAAB>: "
        "Info: msgid=<1@example.org>: saved mail to INBOX\n"
        "2026-11-26T07:42:05.123456+07:00 mail postfix-out/submission/smtpd[4936]: 9D149224A3C: "
        "client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=hungdv.skhcn@test.gov.vn\n"
        "Nov 26 07:43:00 mail dovecot: pop3-login: Login: user=<binht.skhcn>, method=PLAIN\n"
    )
    touch(log, local(2026, 11, 26, 8))
    assert source(log, tmp_path / "state").last_activity() == {
        "maitl.skhcn@test.gov.vn": {"receive (mail log)": local(2026, 11, 26, 7, 42, 16)},
        "hungdv.skhcn@test.gov.vn": {"send (mail log)": local(2026, 11, 26, 7, 42, 5, 123456)},
        "binht.skhcn@test.gov.vn": {"login (mail log)": local(2026, 11, 26, 7, 43)},
    }


def test_a_second_read_takes_only_the_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("one\ntwo\nthree, being writ")
    first = Follower(log, {})
    assert new_lines(first) == ["one", "two"]
    with log.open("a") as fh:
        fh.write("ten\nfour\n")
    second = Follower(log, first.position)
    assert new_lines(second) == ["three, being written", "four"]
    assert new_lines(Follower(log, second.position)) == []


def test_a_rotated_file_is_finished_before_the_new_one_also_compressed(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("a1\na2\n")
    first = Follower(log, {})
    assert new_lines(first) == ["a1", "a2"]
    with log.open("a") as fh:
        fh.write("a3\n")  # written after the read, before the rotation
    with log.open("rb") as src, gzip.open(tmp_path / "mail.log.1.gz", "wb") as dst:
        dst.write(src.read())
    log.unlink()
    (tmp_path / "mail.log.2.gz").write_bytes(gzip.compress(b"older\n"))
    log.write_text("b1\n")
    again = Follower(log, first.position)
    assert new_lines(again) == ["a3", "b1"]
    assert again.note == ""


def test_a_truncated_log_restarts_at_zero_after_its_copy_is_finished(tmp_path: Path) -> None:
    """logrotate's copytruncate: the lines written since the last read are in the copy."""
    log = tmp_path / "mail.log"
    log.write_text("a1\na2\n")
    first = Follower(log, {})
    assert new_lines(first) == ["a1", "a2"]
    with log.open("a") as fh:
        fh.write("a3\n")
    (tmp_path / "mail.log.1").write_bytes(log.read_bytes())
    with log.open("r+") as fh:
        fh.truncate(0)
    with log.open("a") as fh:
        fh.write("b1\n")
    assert new_lines(Follower(log, first.position)) == ["a3", "b1"]
    # truncated with no copy at all: the file is read from its start, and it is said
    (tmp_path / "mail.log.1").unlink()
    second = Follower(log, {**first.position, "head": "0" * 64})
    assert new_lines(second) == ["b1"]
    assert "truncated" in second.note


def test_a_position_that_matches_no_file_means_reading_everything_again(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("a1\n")
    first = Follower(log, {})
    new_lines(first)
    log.unlink()
    (tmp_path / "mail.log.1").write_text("other1\n")
    log.write_text("other2\n")
    again = Follower(log, first.position)
    assert new_lines(again) == ["other1", "other2"]
    assert "matches no file" in again.note


def test_what_was_seen_is_kept_with_the_position_in_a_private_file(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(SEND.format(ts="Nov 20 09:00:00", user="hungdv.skhcn"))
    touch(log, local(2026, 11, 26))
    state = tmp_path / "state" / "activity"
    source(log, state).last_activity()
    log.write_text(NOISE.format(ts="Nov 21 09:00:00"))  # rewritten: nothing of the send left
    touch(log, local(2026, 11, 26))
    seen = source(log, state).last_activity()
    assert seen["hungdv.skhcn@test.gov.vn"] == {"send (mail log)": local(2026, 11, 20, 9)}
    [saved] = state.iterdir()
    assert saved.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    assert json.loads(saved.read_text())["where"]["offset"] == log.stat().st_size


def test_a_relevant_line_with_a_broken_stamp_names_file_and_place_and_saves_nothing(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mail.log"
    good = SEND.format(ts="Nov 20 09:00:00", user="hungdv.skhcn")
    log.write_text(good + SEND.format(ts="Foo 20 09:00:00", user="maitl.skhcn"))
    state = tmp_path / "state"
    with pytest.raises(
        InputFileError, match=rf"mail.log: byte {len(good)}: .*'Foo' is not a month"
    ):
        source(log, state).last_activity()
    assert not state.exists()


def test_dovecot_dict_keys_and_values() -> None:
    assert key_address("shared/last-login/hungdv.skhcn", DOMAIN) == (
        "hungdv.skhcn@test.gov.vn",
        "login",
    )
    # the fs dict drops shared/; iRedMail's key names the service and the domain
    assert key_address("last-login/imap/Mai@Test.gov.vn/test.gov.vn", DOMAIN) == (
        "mai@test.gov.vn",
        "login",
    )
    assert key_address("shared/last-login/lda/mai@test.gov.vn/test.gov.vn", DOMAIN) == (
        "mai@test.gov.vn",
        "receive",
    )
    assert key_address("shared/quota/mai", DOMAIN) is None
    stamp = datetime(2026, 11, 26, 7, 41, 29, tzinfo=UTC)
    assert unix_time("1795678889") == stamp
    assert unix_time("1795678889000") == stamp  # last_login_precision = ms


def test_a_broken_dovecot_dict_file_names_the_line_and_value(tmp_path: Path) -> None:
    path = tmp_path / "lastlogin"
    path.write_text("shared/last-login/a\n1795678889\nshared/last-login/b\nyesterday\n")
    src = DovecotDictSource(path, "dict", frozenset({"login"}), DOMAIN, tmp_path / "state")
    with pytest.raises(InputFileError, match=r"lastlogin: line 4: key .*b', value 'yesterday'"):
        src.last_activity()
    path.write_text("shared/last-login/a\n")
    with pytest.raises(InputFileError, match="line 1: a key without a value"):
        src.last_activity()


def test_configured_sources_are_checked_with_the_key_named(tmp_path: Path) -> None:
    base = (
        "profile: hungyen-2025\ndomain: test.gov.vn\ndirectory: {url: 'ldap://127.0.0.1', "
        "bind_dn: cn=x, base_dn: dc=x, bind_password_file: pw}\npaths: {inbox: i, state: s, "
        "outbox: o, audit_log: a}\norgs: orgs.yaml\nlifecycle:\n  activity_sources:\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"syncd.yaml:8: lifecycle.activity_sources\[0\]: .*MySQL and PostgreSQL are not yet",
    ):
        parse_config(
            base + "    - {type: dovecot-sql, dsn: 'postgresql://u@h/iredadmin'}\n",
            tmp_path / "syncd.yaml",
        )
    with pytest.raises(ConfigError, match="mail-log needs path"):
        parse_config(base + "    - {type: mail-log}\n", tmp_path / "syncd.yaml")
    ok = parse_config(
        base + "    - {type: mail-log, path: /var/log/mail.log, activity: [send, receive]}\n",
        tmp_path / "syncd.yaml",
    )
    assert ok.lifecycle.activity_sources is not None
    assert ok.lifecycle.activity_sources[0].activity == ("send", "receive")


def test_a_source_told_not_to_remember_reads_the_same_and_saves_nothing(tmp_path: Path) -> None:
    """For a command that must save nothing (a plan): the next run reads the lines again."""
    log = tmp_path / "mail.log"
    log.write_text(SEND.format(ts="Nov 20 09:00:00", user="hungdv.skhcn"))
    touch(log, local(2026, 11, 26))
    state = tmp_path / "state"
    plan = MailLogSource(log, "mail log", frozenset({"send"}), ZONE, DOMAIN, state, remember=False)
    assert plan.last_activity() == source(log, tmp_path / "other").last_activity()
    assert not state.exists()
