"""Probe: would LDAP transactions (RFC 5805) make syncd's creates faster than ``ldapadd``, and
can this slapd survive them? Not a test: it prints figures and a verdict.

Why it exists: a durable back-mdb syncs the disk at every commit, one per add, and that sync
sets the pace of a run of creates (docs/architecture.md, Performance). In a transaction,
slapd queues the adds and applies them in one database transaction at the end request: one
sync for the batch. Measured here on Debian 12's slapd 2.5.13 (2-core VM): ``ldapmodify -E
txn=commit`` adds 2,000 entries at ~10,000/s against ~1,860/s without. syncd does **not**
use them, because the same slapd is killed by SIGSEGV when a client's connection ends while
the adds of its transaction are being queued (a syncd killed, a network cut mid-batch): the
province's directory, and its mail, would go down with syncd. This script checks both
again, for the day Debian ships a slapd where the second is fixed:

    PYTHONPATH=. .venv/bin/python bench/probe_ldap_transactions.py [--people N] [--drops K]

1. the rate: ``ldapmodify`` of the same N entries with and without ``-E txn=commit``, each into
   a fresh durable slapd (``devtools.slapd_service.DurableSandbox``);
2. the drops: K times, a fresh slapd, a transaction started with ldap3, 24 adds with the
   transaction's control sent in one write (as a pipelining client sends them), the socket
   shut a millisecond later; then whether slapd is still running. On 2.5.13: killed in 3 of
   6 tries, in 5 of 7 in the first reproductions (with and without a password in the adds,
   so not ppolicy's doing).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ldap3 import Connection, Server
from ldap3.operation.add import add_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

from devtools.slapd_service import DurableSandbox

SUFFIX = "dc=bench,dc=gov,dc=vn"
START_TXN, TXN_CONTROL = "1.3.6.1.1.21.1", "1.3.6.1.1.21.2"


def ldif(people: str, n: int) -> str:
    return "".join(
        f"dn: uid=p{i:06d},{people}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        f"uid: p{i:06d}\ncn: Người {i}\nsn: Người\nuserPassword: Mk-{i}.probe!\n\n"
        for i in range(n)
    )


def rate(root: Path, n: int, transaction: bool) -> float:
    with DurableSandbox(root, suffix=SUFFIX) as slapd:
        path = root / "adds.ldif"
        path.write_text(ldif(slapd.people_dn, n), encoding="utf-8")
        cmd = ["ldapmodify", "-x", "-H", slapd.url, "-D", slapd.admin_dn,
               "-w", slapd.admin_password, "-f", str(path)]  # fmt: skip
        if transaction:
            cmd[1:1] = ["-E", "txn=commit"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return n / (time.perf_counter() - t0)


def add_message(message_id: int, dn: str, control: tuple[str, bool, bytes]) -> bytes:
    """An add with the transaction's control, encoded by ldap3 as it would send it."""
    msg = LDAPMessage()
    msg["messageID"] = MessageID(message_id)
    attrs = {"objectClass": ["inetOrgPerson"], "uid": "x", "cn": "x", "sn": "x"}
    msg["protocolOp"] = ProtocolOp().setComponentByName(
        "addRequest", add_operation(dn, attrs, auto_encode=True)
    )
    msg["controls"] = build_controls_list([control])
    return bytes(encode(msg))


def survives_a_drop(root: Path) -> bool:
    slapd = DurableSandbox(root, suffix=SUFFIX).start()
    try:
        conn = Connection(Server(slapd.url), slapd.service_dn, slapd.service_password,
                          auto_bind=True)  # fmt: skip
        conn.extended(START_TXN)
        control = (TXN_CONTROL, True, conn.result.get("responseValue") or b"")
        adds = [add_message(conn.server.next_message_id(), f"uid=d{i},{slapd.people_dn}", control)
                for i in range(24)]  # fmt: skip
        sock = conn.socket
        sock.sendall(b"".join(adds))  # one write, as a pipelining client sends them
        time.sleep(0.001)
        sock.shutdown(socket.SHUT_RDWR)  # the client gone with its adds being queued
        sock.close()
        time.sleep(1.0)
        assert slapd.process is not None
        return slapd.process.poll() is None
    finally:
        if slapd.process is not None and slapd.process.poll() is None:
            slapd.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--drops", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncd-txn-probe-") as tmp:
        plain = rate(Path(tmp) / "plain", args.people, transaction=False)
        txn = rate(Path(tmp) / "txn", args.people, transaction=True)
        print(f"ldapmodify, {args.people} adds: {plain:,.0f}/s alone, {txn:,.0f}/s in one "
              f"transaction ({txn / plain:.1f}x)")  # fmt: skip
        crashed = sum(not survives_a_drop(Path(tmp) / f"drop{k}") for k in range(args.drops))
    print(f"slapd killed by a client dropping mid-transaction: {crashed} of {args.drops} tries")
    print("verdict:", "unsafe: keep transactions off" if crashed else "survived every drop")


if __name__ == "__main__":
    main()
