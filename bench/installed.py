"""syncd as the Debian package installs and runs it, for the benchmarks to time.

Why not the developer's ``.venv/bin/syncd``: every process the benchmarks time starts Python
and imports syncd, and at 10,000 people that start is a third of a scoped run. The developer's
tree times a start no province sees: an editable install's import hook (``site`` walks it on
every start), the dev tools' extra libraries (import-linter brings ``rich``, which structlog
imports when it finds it: ~0.1 s), and, where ``PYTHONDONTWRITEBYTECODE`` is set, every
module compiled from source on every start. The package (debian/rules) installs syncd and
its runtime dependencies only, pinned by ``debian/constraints.txt``, into one folder; its
postinst compiles them; ``/usr/bin/syncd`` runs Debian's ``python3 -I -S`` on that folder
alone (``debian/syncd-wrapper``). :func:`install` builds the same from a tree, so the figures
are those of the installed product, and a baseline tree (``--baseline``) is installed alike.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# the package's interpreter (debian/syncd-wrapper's shebang); this one where it is missing
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
PIP = Path(sys.executable).parent / "pip"


def install(tree: Path, dest: Path) -> list[str]:
    """Install the syncd in ``tree`` into ``dest`` as debian/rules does; the command to run it.

    ``dest`` is emptied first: a reused folder never mixes two trees' modules.
    """
    shutil.rmtree(dest, ignore_errors=True)
    lib = dest / "lib"
    pip = subprocess.run(
        [str(PIP), "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(lib), "--constraint", str(tree / "debian" / "constraints.txt"),
         "--prefer-binary", str(tree)],
        check=False, cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    if pip.returncode:  # its warnings (an index folder missing) only when it failed
        sys.exit(f"installing {tree} failed:\n{pip.stdout}{pip.stderr}")
    shutil.rmtree(lib / "bin", ignore_errors=True)
    # the postinst's byte code (debian/syncd.postinst)
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(lib)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wrapper = dest / "syncd"
    wrapper.write_text(
        f"#!{PYTHON} -IS\n"
        "import sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "from connectors.entry import main\n"
        "sys.exit(main())\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return [str(wrapper)]


def python_code(dest: Path, code: str) -> list[str]:
    """A command running ``code`` on the interpreter and libraries of ``install(…, dest)``:
    a baseline (a bare ldap3 read) starts the way syncd does, so the ratio compares the work,
    not two ways of starting Python."""
    lib = str(dest / "lib")
    return [PYTHON, "-IS", "-c", f"import sys; sys.path.insert(0, {lib!r})\n{code}"]
