"""The storage rules at the mail server (docs/mail-server.md, "Quota, the warning near it, and
the attachment limit"): the quota syncd writes is the one a real Dovecot counts, the owner is
warned in the mailbox before it is full (Tuyên Quang Đ9.2d) and mail past it is refused; a real
Postfix takes 25 MiB of attachments and refuses more (Hưng Yên Đ8.1b). Each block is taken from
the document as written; the tests replace only the user mail belongs to and the paths."""

from __future__ import annotations

import email
import os
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from ldap3 import MODIFY_REPLACE, Connection

from connectors.directory.doctor import Doctor
from connectors.loading import load_config
from devtools.slapd_sandbox import Sandbox
from tests.conftest import MakeConfig
from tests.helpers import write_roster
from tests.integration import mail_docs
from tests.integration.test_activity_sources import Postfix
from tests.integration.test_directory_contract import needs_schema
from tests.integration.test_mail_servers import (
    DOMAIN,
    Dovecot,
    configure,
    documented,
    find_dn,
    run,
)

LDA = "/usr/lib/dovecot/dovecot-lda"
DOVEADM = "/usr/bin/doveadm"
KIB = 1024


@pytest.fixture
def storage() -> Iterator[Path]:
    """Where the mailboxes are (``directory.mail_storage``): short, and writable by the user
    the test's Dovecot keeps mail as (nobody)."""
    root = Path(tempfile.mkdtemp(prefix="vmail-"))
    root.chmod(0o1777)
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _quota_dovecot(slapd: Sandbox, base_dn: str, script: Path) -> Dovecot:
    """Dovecot with iRedMail's documented login and userdb blocks and the documented quota
    block, its script the documented one."""
    conf = mail_docs.block("tested: dovecot-quota all -->")
    conf = conf.replace("user = vmail", "user = nobody")
    conf = conf.replace("/usr/local/bin/quota-warning.sh", str(script))
    userdb = mail_docs.settings("tested: dovecot-quota-userdb iredmail -->", ())
    dovecot = Dovecot(
        slapd,
        f"o=domains,{base_dn}",
        documented("dovecot", "iredmail"),
        conf,
        user_attrs=userdb["user_attrs"],
    )
    # this test's Dovecot logs to a file (a real one to syslog): the script's LDA, running as
    # the user mail belongs to, writes there too
    (dovecot.root / "dovecot.log").chmod(0o666)
    return dovecot


def _script(folder: Path, dovecot_conf: Path) -> Path:
    """The documented warning script, its LDA pointed at this test's Dovecot (``-c``)."""
    text = mail_docs.block("tested: quota-warning-script all -->")
    text = text.replace(LDA, f"{LDA} -c {dovecot_conf}")
    path = folder / "quota-warning.sh"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def _deliver(dovecot: Dovecot, address: str, size: int, n: int) -> subprocess.CompletedProcess[str]:
    """One message of about ``size`` bytes, as Postfix hands it to Dovecot's LDA."""
    body = f"Báo cáo số {n}\n" + ("x" * 75 + "\n") * (size // 76)
    message = f"From: van.thu@{DOMAIN}\nTo: {address}\nSubject: bao cao {n}\n\n{body}"
    return subprocess.run(
        # -e: a refusal is the exit code and the reason, as LMTP answers Postfix, not a bounce
        [LDA, "-c", str(dovecot.conf), "-e", "-d", address, "-f", f"van.thu@{DOMAIN}"],
        input=message,
        text=True,
        capture_output=True,
        check=False,
        timeout=60,
    )


def _mailbox(home: Path) -> list[email.message.Message]:
    found = sorted((home / "Maildir").glob("*/*"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes()) for p in found if p.is_file()]


def _warnings(home: Path) -> list[str]:
    """The percentages of the quota warnings in the mailbox, in delivery order."""
    return [
        str(m["Subject"]).split("dung ")[1].split("%")[0]
        for m in _mailbox(home)
        if str(m["Subject"]).startswith("Canh bao")
    ]


def _wait_for_warnings(home: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(_warnings(home)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # and no more than that
    return _warnings(home)


def _quota_limit_kib(dovecot: Dovecot, address: str) -> int:
    done = subprocess.run(
        [DOVEADM, "-c", str(dovecot.conf), "-f", "tab", "quota", "get", "-u", address],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    head, storage = rows[0], next(r for r in rows[1:] if r[1] == "STORAGE")
    return int(storage[head.index("Limit")])


def test_dovecot_counts_the_quota_syncd_wrote_warns_the_owner_then_refuses_mail(
    make_config: MakeConfig,
    tmp_path: Path,
    slapd: Sandbox,
    base_dn: str,
    admin: Connection,
    storage: Path,
) -> None:
    needs_schema(slapd, "iredmail")
    # Tuyên Quang sets no least quota: a 1 MiB mailbox fills up within the test
    cfg = configure(make_config, tmp_path, "iredmail", "tuyenquang-2025")
    text = cfg.read_text(encoding="utf-8").replace("  quota_mb: 2048\n", "  quota_mb: 1\n")
    cfg.write_text(text.replace("directory:\n", f"directory:\n  mail_storage: {storage}\n", 1))
    run(
        cfg,
        "reconcile",
        "--roster",
        str(write_roster(tmp_path / "a.csv", ["E1,Lò Văn Đạt,syt,,,,,"])),
    )
    _, uid = find_dn(admin, f"o=domains,{base_dn}", "E1")
    address = f"{uid}@{DOMAIN}"
    scratch = Path(tempfile.mkdtemp(prefix="qw-"))
    scratch.chmod(0o755)
    script = _script(scratch, scratch / "dovecot.conf")
    dovecot = _quota_dovecot(slapd, base_dn, script)
    try:
        os.symlink(dovecot.conf, scratch / "dovecot.conf")
        assert _quota_limit_kib(dovecot, address) == 1024  # mailQuota: 1 MiB, as syncd wrote it
        home = storage / DOMAIN / uid
        # Dovecot runs the warning script on its own, after the delivery that crossed the
        # line: each step waits for what must have arrived (and checks nothing else did)
        for n in range(7):  # 7 x 120 KiB: 82 %
            assert _deliver(dovecot, address, 120 * KIB, n).returncode == 0, dovecot.log()
        time.sleep(1)
        assert _warnings(home) == [], "warned below 85 %"
        assert _deliver(dovecot, address, 120 * KIB, 7).returncode == 0  # 94 %
        assert _wait_for_warnings(home, 1) == ["85"], dovecot.log()
        delivered, refused = 8, None
        for n in range(8, 12):
            done = _deliver(dovecot, address, 120 * KIB, n)
            if done.returncode != 0:
                refused = done
                break
            delivered += 1
        assert refused is not None, f"a full mailbox took every message: {dovecot.log()}"
        assert refused.returncode in (75, 77) and "Quota exceeded" in refused.stderr, refused
        # 1 MiB of 120 KiB messages: Dovecot lets the message that crosses the quota in
        assert delivered in (8, 9), delivered
        expected = ["85", "95"] if delivered == 9 else ["85"]
        assert _wait_for_warnings(home, len(expected)) == expected, dovecot.log()
        messages = _mailbox(home)
        reports = [str(m["Subject"]) for m in messages if str(m["Subject"]).startswith("bao")]
        assert len(reports) == delivered
        [first] = [m for m in messages if "dung 85%" in str(m["Subject"])]
        body = first.get_payload(decode=True)
        assert isinstance(body, bytes) and "Hộp thư của bạn đã dùng 85%" in body.decode()
    finally:
        dovecot.stop()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


def test_dovecot_sees_the_hungyen_quota_syncd_writes(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, base_dn: str, storage: Path
) -> None:
    needs_schema(slapd, "iredmail")
    cfg = configure(make_config, tmp_path, "iredmail", "hungyen-2025")
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("directory:\n", f"directory:\n  mail_storage: {storage}\n", 1))
    run(
        cfg,
        "reconcile",
        "--roster",
        str(write_roster(tmp_path / "a.csv", ["E1,Lò Văn Đạt,syt,,,,,"])),
    )
    scratch = Path(tempfile.mkdtemp(prefix="qw-"))
    scratch.chmod(0o755)
    dovecot = _quota_dovecot(slapd, base_dn, _script(scratch, scratch / "unused.conf"))
    try:
        found = subprocess.run(
            [
                "ldapsearch",
                "-x",
                "-H",
                slapd.url,
                "-D",
                slapd.admin_dn,
                "-w",
                slapd.admin_password,
                "-b",
                f"o=domains,{base_dn}",
                "-LLL",
                "(employeeNumber=E1)",
                "mail",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        address = next(
            line.split(": ")[1] for line in found.splitlines() if line.startswith("mail:")
        )
        assert _quota_limit_kib(dovecot, address) == 2048 * 1024  # Đ8.1b: 2 GB, not 1 GB
    finally:
        dovecot.stop()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


def _with_attachment(size: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"van.thu@{DOMAIN}"
    msg["To"] = f"nguoinhan@{DOMAIN}"
    msg["Subject"] = "Ho so dinh kem"
    msg.set_content("Gửi kèm hồ sơ.")
    msg.add_attachment(os.urandom(size), maintype="application", subtype="pdf", filename="hs.pdf")
    return msg


@pytest.fixture
def postfix() -> Iterator[Postfix]:
    server = Postfix([f"nguoinhan@{DOMAIN}"])
    yield server
    server.stop()


def test_postfix_takes_25_mib_of_attachments_and_refuses_26(postfix: Postfix) -> None:
    settings = mail_docs.settings("tested: postfix-size all -->", ())
    for key, value in settings.items():
        subprocess.run(["postconf", "-c", str(postfix.root), "-e", f"{key}={value}"], check=True)
    # the local delivery agent's own limit must not be the smaller one (the document says so)
    subprocess.run(
        ["postconf", "-c", str(postfix.root), "-e", "virtual_mailbox_limit=0"], check=True
    )
    postfix.postfix("reload")
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=120) as smtp:
        smtp.send_message(_with_attachment(25 * 1024 * 1024))
    with (
        smtplib.SMTP("127.0.0.1", postfix.port, timeout=120) as smtp,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        smtp.send_message(_with_attachment(26 * 1024 * 1024))
    assert refused.value.smtp_code == 552 and b"size exceeds" in refused.value.smtp_error


def test_the_doctor_lists_mailboxes_below_the_hungyen_least_quota(
    make_config: MakeConfig, tmp_path: Path, slapd: Sandbox, base_dn: str, admin: Connection
) -> None:
    """syncd writes the configured quota on the mailboxes it creates only: one made before
    (by hand, an older configuration, adopted) below Đ8.1b's least is the doctor's to name."""
    needs_schema(slapd, "iredmail")
    path = configure(make_config, tmp_path, "iredmail", "hungyen-2025")
    rows = ["E1,Lò Văn Đạt,syt,,,,,", "E2,Lê Thị Mai,syt,,,,,"]
    run(path, "reconcile", "--roster", str(write_roster(tmp_path / "a.csv", rows)))
    cfg = load_config(path)

    def quota_check() -> tuple[str, str, str]:
        report = Doctor(
            cfg.directory, slapd.service_password, DOMAIN, write=False, regulation=cfg.effective
        ).run()
        [check] = [c for c in report.checks if c.name == "quota"]
        return check.status, check.detail, check.fix

    status, detail, _ = quota_check()
    # the people's 2048 MiB and the organisation's mailboxes' 10240 MiB, as syncd wrote them
    assert status == "ok" and "hungyen-2025 Đ8.1b" in detail, detail
    dn, uid = find_dn(admin, f"o=domains,{base_dn}", "E1")
    assert admin.modify(dn, {"mailQuota": [(MODIFY_REPLACE, [str(1024 * 1024 * 1024)])]})
    status, detail, fix = quota_check()
    assert status == "finding"
    assert "1 mailbox(es) syncd manages have less than the least quota hungyen-2025 Đ8.1b" in detail
    assert f"{uid}@{DOMAIN} (1024 MiB < 2048 MiB)" in detail and "mailQuota" in fix
    # a Cao Bằng site (no least quota) has no such check
    cb = load_config(configure(make_config, tmp_path, "iredmail", "caobang-2025"))
    report = Doctor(
        cb.directory, slapd.service_password, DOMAIN, write=False, regulation=cb.effective
    ).run()
    assert "quota" not in {c.name for c in report.checks}
