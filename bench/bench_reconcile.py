"""Benchmark: issue 14's table, each row against its baseline on the same slapd.

Not a test: it prints figures. It starts its own throwaway slapd (loopback, temp directory,
every write synced: ``devtools.slapd_service.DurableSandbox``), so it needs Debian's slapd and
ldap-utils. ``make bench`` runs the 10k set (10 organisations × 1,000 people), ``make bench
BIG=1`` the 100k set (100 × 1,000). Or: ``python bench/bench_reconcile.py [--people N]
[--repeat R] [--workdir DIR] [--no-uid]``.

``--workdir DIR`` keeps the built state (slapd's data, syncd's state, the rosters) in ``DIR``
and reuses it on the next run with the same ``--people``: building 100k with syncd's creates
takes a quarter of an hour on this machine, and the read rows are what changes with the code.
A reused state skips the creates rows (they are measured on the build only).

How: the directory state is built by syncd itself (``syncd reconcile`` of every
organisation's roster: the create row) "yesterday" (slapd and syncd a day behind by
libfaketime, where it is installed), then one entry is changed by hand today, as a live
directory's next change comes (right after a build of a few minutes, every entry is in the
5-minute overlap of a scoped run's window: the one-org rows would re-read the whole
namespace, 4.4 s at 100k; docs/architecture.md), then the read rows run R times
**interleaved** (one of each, then again), each as a whole process under ``/usr/bin/time
-v``: this machine is shared, so a load spike hits every row of a round alike. Printed: the
median and the spread (min-max) of the wall time, the ratio of the medians to the row's
baseline, and the peak memory.

Rows (syncd, then its baseline):

- no-op in a running process: the same run repeated in one process, as the daemon runs it
  (no start-up counted), against ``ldapsearch``.
- no-op: ``syncd plan --latest`` (a run of every organisation's file where nothing changed
  since the last run: it repeats the quiet run recorded by the run after the build,
  connectors/quiet.py); ``ldapsearch -E pr=1000/noprompt`` and a bare ldap3 paged read of the
  same entries and attributes. The run right after the build (a full read) is shown apart, and
  the no-op planned again without the quiet-run record (what the first run after any change
  costs).
- one org: ``syncd plan --roster`` of one organisation's unchanged file; an ldap3 read of it.
- one org, 50 changes: the same file with 50 titles changed.
- creates: the build, ``syncd reconcile`` into the empty directory; ``ldapadd`` of the same
  final entries into a fresh slapd.
- uid: ``syncd uid --input`` of 100,000 names, whole process, per scheme.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.installed import install, python_code
from connectors.directory.openldap import ATTRIBUTES
from connectors.quiet import QUIET_FILE
from connectors.store import write_private
from devtools.samples import full_name
from devtools.slapd_sandbox import Sandbox
from devtools.slapd_service import DurableSandbox

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SUFFIX = "dc=bench,dc=gov,dc=vn"
SCHEMES = ("caobang-2025", "caobang-2011", "hungyen-2025", "tuyenquang-2025")
HEADER = ["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Chức vụ"]


@dataclass
class Row:
    """One line of the table: wall times and peak memory of its repeated runs."""

    name: str
    walls: list[float] = field(default_factory=list)
    peaks_kib: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    def line(self, baseline: Row | None = None) -> str:
        spread = f"{min(self.walls):6.2f}-{max(self.walls):6.2f}"
        ratio = f"{self.median / baseline.median:6.2f}x {baseline.name}" if baseline else ""
        peak = f"peak {max(self.peaks_kib) / 1024:6.0f} MiB" if any(self.peaks_kib) else " " * 15
        return (
            f"{self.name:34} median {self.median:7.2f} s  [{spread}]  {peak}  {ratio} {self.note}"
        )


# The no-op as the daemon meets it: repeated runs in one long-lived process, so no start-up
# (imports, the configuration's models) is counted; each must repeat the last quiet run.
IN_DAEMON = """
import sys, time
from pathlib import Path
from connectors import runner
from connectors.loading import load_config
from connectors.snapshots import SnapshotRegistry
cfg = load_config(Path(sys.argv[1]))
walls = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    latest = SnapshotRegistry(cfg.paths.state).latest()
    out = runner.run(cfg, rosters=sorted(latest), restrict=latest, full=True, dry_run=True)
    walls.append(time.perf_counter() - t0)
    assert out.repeats, "the run did not repeat the quiet one"
print("WALLS", " ".join(f"{w:.4f}" for w in walls))  # the run's log lines go to stdout too
"""


def timed(
    cmd: Sequence[str],
    *,
    stdout: int | None = subprocess.DEVNULL,
    env: Mapping[str, str] | None = None,
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, ``/usr/bin/time -v``) of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0,):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(peak.group(1)) if peak else 0


def run_into(row: Row, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    wall, peak = timed(cmd, env=env)
    row.walls.append(wall)
    row.peaks_kib.append(peak)


def write_rosters(root: Path, people: int, rng: random.Random) -> list[Path]:
    """One roster per organisation of 1,000 people (the province's shape)."""
    orgs = [f"dv{i:03d}" for i in range(max(1, people // 1000))]
    (root / "orgs.yaml").write_text(
        "orgs:\n" + "".join(f"  - {{code: {o}, name: Đơn vị {o}, mailbox: so{o}}}\n" for o in orgs),
        encoding="utf-8",
    )
    files = []
    for n, org in enumerate(orgs):
        path = root / f"{org}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(HEADER)
            for i in range(n * 1000, min(people, (n + 1) * 1000)):
                out.writerow([f"E{i:06d}", full_name(rng), org, "Chuyên viên"])
        files.append(path)
    return files


def changed_copy(src: Path, dst: Path, changes: int) -> Path:
    """``src`` with the title of its first ``changes`` people changed."""
    rows = list(csv.reader(src.open(encoding="utf-8")))
    for row in rows[1 : changes + 1]:
        row[3] = "Phó trưởng phòng"
    with dst.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return dst


LDAP3_READ = """
import sys
from ldap3 import NONE, SUBTREE, Connection, Server
url, dn, pw, base, flt, attrs = sys.argv[1:7]
conn = Connection(Server(url, get_info=NONE), dn, pw, auto_bind=True)
n = sum(1 for e in conn.extend.standard.paged_search(base, flt, SUBTREE,
        attributes=attrs.split(","), paged_size=1000, generator=True)
        if e.get("type") == "searchResEntry")
print(n)
"""


FAKETIME_LIB = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


def yesterday() -> dict[str, str]:
    """The environment that runs a process a day ago (libfaketime), or none without it."""
    if not FAKETIME_LIB.exists():
        return {}
    return {
        "LD_PRELOAD": str(FAKETIME_LIB),
        "FAKETIME": "-1d",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def build(
    root: Path, slapd: Sandbox, syncd: list[str], files: list[Path], env: Mapping[str, str]
) -> tuple[Row, Row]:
    """The directory state built by syncd's creates, and ldapadd of the same final entries
    into a fresh slapd: the creates rows. ``slapd`` runs with ``env``, and so do syncd and
    the other slapd (``yesterday``)."""
    creates = Row("creates: syncd reconcile")
    run_into(creates, [*syncd, "reconcile", *(a for f in files for a in ("--roster", str(f)))], env)
    accounts = _count(slapd)
    creates.note = f"{accounts / creates.walls[0]:,.0f} accounts/s ({accounts} entries)"
    ldif = root / "entries.ldif"
    with ldif.open("w") as fh:
        subprocess.run(
            ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H", slapd.url,
             "-D", slapd.admin_dn, "-w", slapd.admin_password, "-b", slapd.people_dn,
             "-s", "one", "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)", "*",
             "pwdReset"],
            stdout=fh, check=True,
        )  # fmt: skip
    other = DurableSandbox(Path(tempfile.mkdtemp(prefix="syncd-bench-add-")), suffix=SUFFIX)
    other.start(env=env)
    try:
        ldapadd = Row("creates: ldapadd, same entries")
        run_into(
            ldapadd,
            ["ldapadd", "-x", "-H", other.url, "-D", other.admin_dn,
             "-w", other.admin_password, "-f", str(ldif)],
        )  # fmt: skip
        ldapadd.note = f"{accounts / ldapadd.walls[0]:,.0f} accounts/s"
    finally:
        other.stop()
    return creates, ldapadd


def a_change_today(slapd: Sandbox, org: str) -> None:
    """One entry changed by hand today (the organisation mailbox's title, which no rule of
    syncd's sets): the directory's newest change, alone, a day after the build's."""
    ldif = (
        f"dn: uid=so{org},{slapd.people_dn}\nchangetype: modify\nreplace: title\n"
        f"title: changed {time.time():.0f}\n"
    )
    subprocess.run(
        ["ldapmodify", "-x", "-H", slapd.url, "-D", slapd.admin_dn, "-w", slapd.admin_password],
        input=ldif, text=True, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep the built state here and reuse it")
    parser.add_argument("--no-uid", action="store_true", help="skip the syncd uid rows")
    args = parser.parse_args()
    if args.workdir:
        root = args.workdir.resolve() / str(args.people)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    built = root / "built"  # written once the build finished: the state is reusable
    rng = random.Random(7)
    files = write_rosters(root, args.people, rng)
    one = files[0]
    (root / "changed").mkdir(exist_ok=True)
    fifty = changed_copy(one, root / "changed" / one.name, 50)  # same name: same organisation
    # the product as the package installs it (bench/installed.py): a fresh copy of this tree
    installed = install(ROOT, root / "installed")
    syncd = [*installed, "-c", str(root / "syncd.yaml")]
    ldap3_read = python_code(root / "installed", LDAP3_READ)
    load = os.getloadavg()
    with DurableSandbox(root / "slapd", suffix=SUFFIX) as slapd:
        write_private(root / "bind.pw", slapd.service_password)
        (root / "syncd.yaml").write_text(
            f"""profile: caobang-2025
domain: bench.gov.vn
directory: {{url: "{slapd.url}", bind_dn: "{slapd.service_dn}", bind_password_file: bind.pw,
            base_dn: "{slapd.people_dn}", page_size: 1000}}
paths: {{inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}}
orgs: orgs.yaml
""",
            encoding="utf-8",
        )
        creates = ldapadd = None
        if not built.exists():
            # built "yesterday" (slapd and syncd a day behind, libfaketime), as a province's
            # directory was: run right after a build of a few minutes, every entry would be
            # in the 5-minute overlap of a scoped run's window (the whole namespace re-read:
            # 4.4 s for one organisation's file at 100k), a state a live directory leaves at
            # its next change (docs/architecture.md, "the window")
            slapd.stop()
            slapd.start(env=yesterday())
            creates, ldapadd = build(root, slapd, syncd, files, yesterday())
            slapd.stop()
            slapd.start()
            built.write_text("built\n", encoding="utf-8")
        a_change_today(slapd, one.stem)
        # the run after the build: it reads the directory in full (the build's snapshot was
        # taken before its creates) and leaves the snapshot the rows below start from, as the
        # daemon's runs do (a row is "a run where nothing changed since the last")
        settle = Row("first run after the build (full read)")
        # a record left by an earlier run of another syncd is of no use to this one, and would
        # hide that this settle run was not quiet (then it is run again below)
        (root / "state" / QUIET_FILE).unlink(missing_ok=True)
        run_into(settle, [*syncd, "reconcile", "--latest"])
        # -- the read rows, interleaved ------------------------------------------------------------
        noop = Row("no-op: syncd plan --latest")
        # the same run without the settle run's quiet-run record (connectors/quiet.py): what
        # a run costs that plans every account again (the first after any change)
        replan = Row("no-op, planned again (no record)")
        record = root / "state" / QUIET_FILE
        ldapsearch = Row("no-op base: ldapsearch pr=1000")
        bare = Row("no-op base: bare ldap3 read")
        org = Row(f"one org ({one.stem}), no change")
        org_read = Row("one org base: ldap3 read")
        org50 = Row("one org, 50 changes")
        every = "(objectClass=inetOrgPerson)"
        for _ in range(args.repeat):
            run_into(noop, [*syncd, "plan", "--latest"])
            if not record.exists():  # the settle run was not quiet: run it once more
                run_into(settle, [*syncd, "reconcile", "--latest"])
            record.rename(record.with_suffix(".aside"))
            try:
                run_into(replan, [*syncd, "plan", "--latest"])
            finally:
                record.with_suffix(".aside").rename(record)
            run_into(
                ldapsearch,
                ["ldapsearch", "-LLL", "-x", "-H", slapd.url, "-D", slapd.service_dn,
                 "-w", slapd.service_password, "-b", slapd.people_dn,
                 "-E", "pr=1000/noprompt", every, *ATTRIBUTES],
            )  # fmt: skip
            run_into(
                bare,
                [*ldap3_read, slapd.url, slapd.service_dn, slapd.service_password,
                 slapd.people_dn, every, ",".join(ATTRIBUTES)],
            )  # fmt: skip
            run_into(org, [*syncd, "plan", "--roster", str(one)])
            run_into(
                org_read,
                [*ldap3_read, slapd.url, slapd.service_dn, slapd.service_password,
                 slapd.people_dn, f"(&{every}(ou={one.stem}))", ",".join(ATTRIBUTES)],
            )  # fmt: skip
            run_into(org50, [*syncd, "plan", "--roster", str(fifty)])
        # -- the no-op inside a running daemon: the same runs without a process each
        in_daemon = Row("no-op in a running process (daemon)")
        proc = subprocess.run(
            [*python_code(root / "installed", IN_DAEMON), str(root / "syncd.yaml"),
             str(max(args.repeat, 5))],
            capture_output=True, text=True, check=False, cwd=root,
        )  # fmt: skip
        if proc.returncode:
            sys.exit(f"the in-process no-op failed:\n{proc.stderr[-3000:]}")
        line = next(x for x in proc.stdout.splitlines() if x.startswith("WALLS "))
        in_daemon.walls = [float(w) for w in line.split()[1:]]
        in_daemon.peaks_kib = [0]  # not measured: the process's peak is its first run's
    # -- syncd uid --input, whole process, per scheme -------------------------------------------
    names = root / "names.csv"
    with names.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["full_name", "org"])
        for i in range(max(args.people, 100_000)):
            out.writerow([full_name(rng), f"dv{i % 100:03d}"])
    uid_rows = [] if args.no_uid else [Row(f"syncd uid --input 100k, {s}") for s in SCHEMES]
    for _ in range(max(1, args.repeat // 2) if uid_rows else 0):
        for row, scheme in zip(uid_rows, SCHEMES, strict=True):
            run_into(row, [*installed, "uid", "--scheme", scheme, "--input", str(names)])

    la = " ".join(f"{x:.2f}" for x in load)
    print(f"{args.people} people, {len(files)} organisations; {args.repeat} interleaved rounds")
    print(f"machine: {os.cpu_count()} cores, load average at start {la}")
    if creates and ldapadd:
        print(creates.line(ldapadd))
        print(ldapadd.line())
    else:
        print(f"(the state built earlier in {root} reused: no creates rows)")
    print(settle.line(bare))
    print(noop.line(bare))
    print(f"{'':34} {'':38} {noop.median / ldapsearch.median:6.2f}x {ldapsearch.name}")
    print(in_daemon.line(ldapsearch))
    print(replan.line(bare))
    print(f"{'':34} {'':38} {replan.median / ldapsearch.median:6.2f}x {ldapsearch.name}")
    print(ldapsearch.line())
    print(bare.line())
    print(org.line(org_read))
    print(org_read.line())
    print(org50.line(org_read))
    for row in uid_rows:
        print(row.line())


def _count(slapd: Sandbox) -> int:
    out = subprocess.run(
        ["ldapsearch", "-LLL", "-x", "-H", slapd.url, "-D", slapd.admin_dn,
         "-w", slapd.admin_password, "-b", slapd.people_dn, "-s", "one",
         "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)", "1.1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return out.count("\ndn: ") + out.startswith("dn: ")


if __name__ == "__main__":
    main()
