"""Benchmark: issue 14's creates row alone, repeated, against ``ldapadd`` on the same slapd.

Not a test: it prints figures. ``bench/bench_reconcile.py`` measures the creates once, as the
build of its read rows; this one measures them R times, **interleaved** (syncd, then
``ldapadd`` of the same final entries, then again), each into a fresh durable slapd
(``devtools.slapd_service.DurableSandbox``: every write synced), so the median and the spread
mean something on a shared machine. ``python bench/bench_creates.py [--people N] [--repeat R]
[--baseline DIR] [--py-spy FILE]``: ``--baseline`` runs another syncd tree in each round too
(``git archive <commit> | tar -x -C DIR``: the same rows before a change, under the same
load); with ``--py-spy`` one more syncd run is recorded by py-spy (speedscope JSON, or a flame
graph for a ``.svg`` name).

A round: a fresh slapd and state, ``syncd reconcile`` of every organisation's roster (the
whole process: rosters read, plan, creates, journal, slips, audit, report), the entries it
made exported (the must-change flag ``pwdReset`` with them), a second fresh slapd and
``ldapadd -f`` of that export as the rootdn. The ratio printed is syncd's accounts per second
over that ``ldapadd``'s: the issue's baseline.

A third line, for the argument in docs/architecture.md: ``ldapadd`` of *syncd's own
requests*, into a third fresh slapd: bound as syncd's service DN (its access rules
evaluated), each password in clear for ppolicy to hash (what syncd must send: the server
hashes by its policy; the export carries the hash slapd already made). That is what the
adds syncd sends cost one at a time; ``bench/probe_pipelined_adds.py`` measures the same
requests pipelined with no client work, the most any client of this slapd could get.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_reconcile import BIN, SUFFIX, _count, write_rosters
from bench.installed import install
from connectors.store import write_private
from devtools.slapd_service import DurableSandbox

ROOT = Path(__file__).resolve().parent.parent


def config(root: Path, slapd: DurableSandbox) -> Path:
    write_private(root / "bind.pw", slapd.service_password)
    path = root / "syncd.yaml"
    path.write_text(
        f"""profile: caobang-2025
domain: bench.gov.vn
directory: {{url: "{slapd.url}", bind_dn: "{slapd.service_dn}", bind_password_file: bind.pw,
            base_dn: "{slapd.people_dn}", page_size: 1000}}
paths: {{inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}}
orgs: {root.parent / "orgs.yaml"}
""",
        encoding="utf-8",
    )
    return path


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def syncd_only(work: Path, files: list[Path], syncd: list[str]) -> float:
    """Seconds of another syncd (a baseline tree, installed) creating the same accounts into
    a fresh slapd."""
    run = Path(tempfile.mkdtemp(prefix="base-", dir=work))
    try:
        with DurableSandbox(run / "slapd", suffix=SUFFIX) as slapd:
            cfg = config(run, slapd)
            cmd = [*syncd, "-c", str(cfg), "reconcile"]
            return wall(cmd + [a for f in files for a in ("--roster", str(f))])
    finally:
        shutil.rmtree(run, ignore_errors=True)


def as_requests(export: Path, out: Path) -> None:
    """``export`` (the entries syncd made) as syncd's requests: each hashed password replaced
    by a clear one of a one-time password's shape, for ppolicy to hash as it hashes syncd's."""
    n = 0
    with export.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            if line.lower().startswith("userpassword:"):
                n += 1
                line = f"userPassword: Mk-{n:06d}.Bench!x9\n"
            dst.write(line)


def one_round(
    work: Path, files: list[Path], syncd_cmd: list[str], spy: Path | None = None
) -> tuple[float, float, float, int]:
    """syncd's seconds, ldapadd's for the same entries and for syncd's requests, and how many
    entries."""
    run = Path(tempfile.mkdtemp(prefix="round-", dir=work))
    try:
        with DurableSandbox(run / "slapd", suffix=SUFFIX) as slapd:
            cfg = config(run, slapd)
            cmd = [*syncd_cmd, "-c", str(cfg), "reconcile"]
            cmd += [a for f in files for a in ("--roster", str(f))]
            if spy is not None:
                fmt = "flamegraph" if spy.suffix == ".svg" else "speedscope"
                cmd = [str(BIN / "py-spy"), "record", "--rate", "200", "-o", str(spy),
                       "--format", fmt, "--", *cmd]  # fmt: skip
            syncd = wall(cmd)
            entries = _count(slapd)
            ldif = run / "entries.ldif"
            with ldif.open("w") as fh:
                subprocess.run(
                    ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", slapd.url,
                     "-D", slapd.admin_dn, "-w", slapd.admin_password, "-b", slapd.people_dn,
                     "-s", "one", "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)",
                     "*", "pwdReset"],
                    stdout=fh, check=True,
                )  # fmt: skip
        with DurableSandbox(run / "slapd-ldapadd", suffix=SUFFIX) as other:
            ldapadd = wall(
                ["ldapadd", "-x", "-H", other.url, "-D", other.admin_dn,
                 "-w", other.admin_password, "-f", str(ldif)],
            )  # fmt: skip
        requests = run / "requests.ldif"
        as_requests(ldif, requests)
        with DurableSandbox(run / "slapd-requests", suffix=SUFFIX) as other:
            same_requests = wall(
                ["ldapadd", "-x", "-H", other.url, "-D", other.service_dn,
                 "-w", other.service_password, "-f", str(requests)],
            )  # fmt: skip
        return syncd, ldapadd, same_requests, entries
    finally:
        shutil.rmtree(run, ignore_errors=True)


def line(name: str, rates: list[float]) -> str:
    return (
        f"{name:34} median {statistics.median(rates):7,.0f} accounts/s  "
        f"[{min(rates):,.0f}-{max(rates):,.0f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another syncd tree, run in each round")
    parser.add_argument("--py-spy", type=Path, help="also record one syncd run with py-spy")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="syncd-bench-creates-"))
    files = write_rosters(work, args.people, random.Random(7))
    # the product as the package installs it (bench/installed.py), this tree and the baseline
    syncd = install(ROOT, work / "installed")
    base = install(args.baseline.resolve(), work / "installed-baseline") if args.baseline else []
    load = os.getloadavg()
    ours: list[float] = []
    theirs: list[float] = []
    requests: list[float] = []
    ratios: list[float] = []
    before: list[float] = []
    for _ in range(args.repeat):
        took, ldapadd, same, entries = one_round(work, files, syncd)
        ours.append(entries / took)
        theirs.append(entries / ldapadd)
        requests.append(entries / same)
        ratios.append(ldapadd / took)
        line_ = (
            f"  round: syncd {entries / took:,.0f}/s, ldapadd {entries / ldapadd:,.0f}/s, "
            f"ldapadd of syncd's requests {entries / same:,.0f}/s"
        )
        if base:
            before.append(entries / syncd_only(work, files, base))
            line_ += f", baseline syncd {before[-1]:,.0f}/s"
        print(line_, flush=True)
    if args.py_spy:
        one_round(work, files, syncd, args.py_spy.resolve())
    la = " ".join(f"{x:.2f}" for x in load)
    print(f"{args.people} people; {args.repeat} interleaved rounds; load at start {la}")
    print(f"machine: {os.cpu_count()} cores, load average now {os.getloadavg()[0]:.2f}")
    print(line("creates: syncd reconcile", ours))
    print(line("creates: ldapadd, same entries", theirs))
    print(line("  ldapadd of syncd's requests", requests))
    if before:
        print(line(f"creates: syncd at {args.baseline}", before))
    print(
        f"{'syncd / ldapadd':34} median {statistics.median(ratios):7.2f}x        "
        f"[{min(ratios):.2f}-{max(ratios):.2f}]"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
