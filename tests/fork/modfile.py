#!/usr/bin/env python3
"""Writes a go.mod that builds processman against a PocketBase fork's source.

    modfile.py FORK_SRC OUT_DIR

FORK_SRC is the fork's source: a directory, or a .tar.gz of one (unpacked
into OUT_DIR/src). The fork must declare `module github.com/pocketbase/pocketbase`,
as forks do to keep PocketBase's import paths. OUT_DIR/fork.mod is the
project's go.mod with PocketBase replaced by that source and the fork's own
replace lines added (Go ignores a dependency's replace lines, so a fork that
replaces github.com/pocketbase/dbx needs them here too). Then
`go build -modfile=OUT_DIR/fork.mod ./...` builds against the fork; this is
what make test-fork does, and what a user with their own fork runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "github.com/pocketbase/pocketbase"


def unpack(source: Path, out: Path) -> Path:
    """The fork's module directory: source itself, or where its archive unpacks."""
    if source.is_dir():
        return source.resolve()
    if not source.name.endswith((".tar.gz", ".tgz")):
        raise SystemExit(f"FORK_SRC={source}: give a directory or a .tar.gz of the fork's source")
    target = out / "src"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(source) as archive:
        archive.extractall(target, filter="data")
    found = [p.parent for p in target.glob("*/go.mod")] + [p.parent for p in target.glob("go.mod")]
    if len(found) != 1:
        raise SystemExit(f"FORK_SRC={source}: expected one go.mod at the top of the archive, found {len(found)}")
    return found[0].resolve()


def replaces(fork: Path) -> list[str]:
    """The fork's own replace directives, local paths made absolute."""
    text = (fork / "go.mod").read_text()
    lines: list[str] = []
    for block in re.findall(r"^replace\s*\((.*?)^\)", text, re.M | re.S):
        lines += [line.strip() for line in block.splitlines() if line.strip()]
    lines += [m.strip() for m in re.findall(r"^replace\s+([^(\n][^\n]*)$", text, re.M)]
    out = []
    for line in lines:
        line = line.split("//")[0].strip()
        if not line:
            continue
        left, right = (part.strip() for part in line.split("=>"))
        # Unversioned: the fork replaces its dependency whatever version
        # this module's requirements select.
        left = left.split()[0]
        target = right.split()
        if target[0].startswith((".", "/")):
            target[0] = str((fork / target[0]).resolve())
        out.append(f"replace {left} => {' '.join(target)}")
    return out


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, out = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    if not source.exists():
        raise SystemExit(f"FORK_SRC={source}: no such file or directory")
    out.mkdir(parents=True, exist_ok=True)
    fork = unpack(source, out)
    declared = re.search(r"^module\s+(\S+)", (fork / "go.mod").read_text(), re.M)
    if not declared or declared.group(1) != MODULE:
        raise SystemExit(f"{fork}/go.mod: the fork must declare module {MODULE}")
    mod = out / "fork.mod"
    lines = [(ROOT / "go.mod").read_text().rstrip(), "", f"replace {MODULE} => {fork}", *replaces(fork)]
    mod.write_text("\n".join(lines) + "\n")
    shutil.copy(ROOT / "go.sum", out / "fork.sum")
    subprocess.run(["go", "mod", "tidy", f"-modfile={mod}"], cwd=ROOT, check=True)
    print(mod)


if __name__ == "__main__":
    main()
