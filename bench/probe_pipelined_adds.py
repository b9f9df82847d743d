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
        [--depths 1,2,4,16,64] [--work 0,150,300]

``--work`` spends W us of busy CPU on the client before each add it sends (16 in flight):
what a client that builds its adds while slapd works costs slapd's rate when both share
this machine's cores; each line also gives slapd's own CPU per add.

If pipelining lifts slapd well above ``ldapadd``, syncd's creates have room to pass it; if
both sit at the disk's pace, what separates syncd from ``ldapadd`` is only what syncd does
besides the adds (start-up, reading, planning, slips, journal, audit).
"""

from __future__ import annotations

import argparse
import os
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


def _spin(us: int) -> None:
    """Busy CPU on this process's thread for ``us`` microseconds (a client's work per add)."""
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (/proc/<pid>/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pipelined(root: Path, n: int, depth: int = DEPTH, work: int = 0) -> tuple[float, float]:
    """Adds per second, and slapd's CPU per add (us). ``work``: us of busy CPU before each
    add is sent, as a client that builds its adds while slapd works would spend."""
    with DurableSandbox(root, suffix=SUFFIX) as slapd:
        conn = Connection(Server(slapd.url), slapd.service_dn, slapd.service_password,
                          auto_bind=True)  # fmt: skip
        adds = [
            add_request(conn.server.next_message_id(), dn, attrs)
            for dn, attrs in entries(slapd.people_dn, n)
        ]
        assert slapd.process is not None
        cpu = _cpu_seconds(slapd.process.pid)
        sock, answers = conn.socket, Answers()
        sent = got = 0
        t0 = time.perf_counter()
        while got < n:
            if work:
                while sent < n and sent - got < depth:  # one add at a time, each "built"
                    _spin(work)
                    sock.sendall(adds[sent])
                    sent += 1
            elif sent < n and sent - got < depth:
                upto = min(n, got + depth)
                sock.sendall(b"".join(adds[sent:upto]))
                sent = upto
            for answer in answers.feed(sock.recv(65536)):
                if answer.code != 0:
                    raise SystemExit(f"add refused: {answer.code} {answer.message}")
                got += 1
        seconds = time.perf_counter() - t0
        slapd_cpu = (_cpu_seconds(slapd.process.pid) - cpu) / n * 1e6
        conn.unbind()
        return n / seconds, slapd_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--depths", default=str(DEPTH),
        help="adds in flight, comma-separated: each a run of its own per round (1,2,4,16,64)",
    )  # fmt: skip
    parser.add_argument(
        "--work", default="0",
        help="us of client CPU per add, comma-separated (16 in flight): 0,150,300 shows what "
        "a client's own work per add costs slapd's rate on this machine's cores",
    )  # fmt: skip
    args = parser.parse_args()
    runs = [(int(d), 0) for d in args.depths.split(",")]
    runs += [(DEPTH, int(w)) for w in args.work.split(",") if int(w)]
    one: list[float] = []
    many: dict[tuple[int, int], list[float]] = {k: [] for k in runs}
    cpu: dict[tuple[int, int], list[float]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory(prefix="syncd-pipe-probe-") as tmp:
        for r in range(args.repeat):
            one.append(with_ldapadd(Path(tmp) / f"one{r}", args.people))
            for d, w in runs:
                rate, used = pipelined(Path(tmp) / f"many{r}-{d}-{w}", args.people, d, w)
                many[d, w].append(rate)
                cpu[d, w].append(used)
            got = ", ".join(f"{_name(*k)} {many[k][-1]:,.0f}/s" for k in runs)
            print(f"  round {r + 1}: ldapadd {one[-1]:,.0f}/s, pipelined {got}")
    a = statistics.median(one)
    print(f"{args.people} adds into a durable slapd: ldapadd {a:,.0f}/s [{min(one):,.0f}-"
          f"{max(one):,.0f}]")  # fmt: skip
    for k in runs:
        b = statistics.median(many[k])
        print(f"  pipelined {_name(*k)} {b:,.0f}/s [{min(many[k]):,.0f}-{max(many[k]):,.0f}]: "
              f"{b / a:.2f}x; slapd's CPU {statistics.median(cpu[k]):,.0f} us an add")  # fmt: skip


def _name(depth: int, work: int) -> str:
    return f"x{depth}, " + (f"{work} us of client CPU an add" if work else "no client work")


if __name__ == "__main__":
    main()
