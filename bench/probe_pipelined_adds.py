"""Probe: how fast does a durable slapd take adds at all, one at a time or pipelined? Not a
test: it prints figures.

Why it exists: issue 14 asks syncd's creates to reach ``ldapadd``'s rate. A durable back-mdb
commits (and syncs the disk) once per add, one add at a time whatever the client does, so
the most any client can get out of it is slapd's own rate with adds always waiting. This
measures that ceiling with no client work at all: the same N adds (syncd's shape: an
inetOrgPerson with a clear password for ppolicy to hash, ``pwdReset``), each run into a fresh
``devtools.slapd_service.DurableSandbox``, interleaved R rounds:

- ``ldapadd`` (C, libldap): one add, wait for its answer, the next;
- pipelined: the adds encoded beforehand (``connectors.directory.ber.add_request``), 16 in
  flight on one bound connection, answers read as they come (syncd's ``create_many`` without
  the rest of syncd).

    PYTHONPATH=. .venv/bin/python bench/probe_pipelined_adds.py [--people N] [--repeat R]

If pipelining lifts slapd well above ``ldapadd``, syncd's creates have room to pass it; if
both sit at the disk's pace, what separates syncd from ``ldapadd`` is only what syncd does
besides the adds (start-up, reading, planning, slips, journal, audit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ldap3 import Connection, Server

from connectors.directory.ber import Answers, add_request
from devtools.slapd_service import DurableSandbox

SUFFIX = "dc=bench,dc=gov,dc=vn"
DEPTH = 16


def entries(people: str, n: int) -> list[tuple[str, dict[str, list[str]]]]:
    return [
        (
            f"uid=p{i:06d},{people}",
            {
                "objectClass": ["inetOrgPerson"],
                "uid": [f"p{i:06d}"],
                "cn": [f"Người Thử {i}"],
                "sn": ["Người"],
                "mail": [f"p{i:06d}@bench.gov.vn"],
                "employeeNumber": [f"E{i:06d}"],
                "ou": [f"dv{i % 10:03d}"],
                "userPassword": [f"Mk-{i}.probe!Xy"],
                "pwdReset": ["TRUE"],
            },
        )
        for i in range(n)
    ]


def ldif(items: list[tuple[str, dict[str, list[str]]]]) -> str:
    return "".join(
        f"dn: {dn}\n" + "".join(f"{k}: {v}\n" for k, vs in attrs.items() for v in vs) + "\n"
        for dn, attrs in items
    )


def with_ldapadd(root: Path, n: int) -> float:
    with DurableSandbox(root, suffix=SUFFIX) as slapd:
        path = root / "adds.ldif"
        path.write_text(ldif(entries(slapd.people_dn, n)), encoding="utf-8")
        cmd = ["ldapadd", "-x", "-H", slapd.url, "-D", slapd.service_dn,
               "-w", slapd.service_password, "-f", str(path)]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return n / (time.perf_counter() - t0)


def pipelined(root: Path, n: int, depth: int = DEPTH) -> float:
    with DurableSandbox(root, suffix=SUFFIX) as slapd:
        conn = Connection(Server(slapd.url), slapd.service_dn, slapd.service_password,
                          auto_bind=True)  # fmt: skip
        adds = [
            add_request(conn.server.next_message_id(), dn, attrs)
            for dn, attrs in entries(slapd.people_dn, n)
        ]
        sock, answers = conn.socket, Answers()
        sent = got = 0
        t0 = time.perf_counter()
        while got < n:
            if sent < n and sent - got < depth:
                upto = min(n, got + depth)
                sock.sendall(b"".join(adds[sent:upto]))
                sent = upto
            for answer in answers.feed(sock.recv(65536)):
                if answer.code != 0:
                    raise SystemExit(f"add refused: {answer.code} {answer.message}")
                got += 1
        seconds = time.perf_counter() - t0
        conn.unbind()
        return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--depths", default=str(DEPTH),
        help="adds in flight, comma-separated: each a run of its own per round (1,2,4,16,64)",
    )  # fmt: skip
    args = parser.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    one: list[float] = []
    many: dict[int, list[float]] = {d: [] for d in depths}
    with tempfile.TemporaryDirectory(prefix="syncd-pipe-probe-") as tmp:
        for r in range(args.repeat):
            one.append(with_ldapadd(Path(tmp) / f"one{r}", args.people))
            for d in depths:
                many[d].append(pipelined(Path(tmp) / f"many{r}-{d}", args.people, d))
            got = ", ".join(f"x{d} {many[d][-1]:,.0f}/s" for d in depths)
            print(f"  round {r + 1}: ldapadd {one[-1]:,.0f}/s, pipelined {got}")
    a = statistics.median(one)
    print(f"{args.people} adds into a durable slapd: ldapadd {a:,.0f}/s [{min(one):,.0f}-"
          f"{max(one):,.0f}]")  # fmt: skip
    for d in depths:
        b = statistics.median(many[d])
        print(f"  pipelined x{d} with no client work {b:,.0f}/s "
              f"[{min(many[d]):,.0f}-{max(many[d]):,.0f}]: {b / a:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
