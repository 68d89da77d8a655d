#!/usr/bin/env python3
"""Checks what `make dist` built, without installing it: every wheel and npm
tarball is there, holds what it should (and nothing else), carries a binary
of its own platform (by its header: ELF, Mach-O or PE, and the CPU), stays
under a size limit, and has the version of the VERSION file, as do the SDKs.

Usage: python3 packaging/check.py [dist]
"""

from __future__ import annotations

import json
import re
import struct
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import REPO, TARGETS, Target  # noqa: E402

MAX_BYTES = 40 << 20  # a compressed package; the binary is about 15 MB of it

ELF_MACHINE = {"amd64": 62, "arm64": 183}
MACHO_CPU = {"amd64": 0x01000007, "arm64": 0x0100000C}
PE_MACHINE = {"amd64": 0x8664, "arm64": 0xAA64}


def binary_platform_error(data: bytes, target: Target) -> str:
    """Why data is not an executable of target, "" when it is."""
    if target.goos == "linux":
        if data[:4] != b"\x7fELF":
            return "not an ELF file"
        if struct.unpack_from("<H", data, 18)[0] != ELF_MACHINE[target.goarch]:
            return "an ELF file for another CPU"
    elif target.goos == "darwin":
        magic, cpu = struct.unpack_from("<II", data, 0)
        if magic != 0xFEEDFACF:
            return "not a 64-bit Mach-O file"
        if cpu != MACHO_CPU[target.goarch]:
            return "a Mach-O file for another CPU"
    elif target.goos == "windows":
        if data[:2] != b"MZ":
            return "not a PE file"
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[pe:pe + 4] != b"PE\0\0" or struct.unpack_from("<H", data, pe + 4)[0] != PE_MACHINE[target.goarch]:
            return "a PE file for another CPU"
    return ""


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "dist").resolve()
    version = (REPO / "VERSION").read_text().strip()
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)

    sdk = tomllib.loads((REPO / "sdk" / "python" / "pyproject.toml").read_text())["project"]
    check(sdk["version"] == version, f"sdk/python version {sdk['version']}, VERSION {version}")
    check(f"processman-server=={version}" in sdk["optional-dependencies"].get("server", []),
          f"sdk/python's server extra does not pin processman-server=={version}")
    node = json.loads((REPO / "sdk" / "node" / "package.json").read_text())
    check(node["version"] == version, f"sdk/node version {node['version']}, VERSION {version}")

    integrity = json.loads((dist / "npm-integrity.json").read_text())
    sums = (dist / "SHA256SUMS").read_text()
    for target in TARGETS:
        wheels = list(dist.glob(f"processman_server-{version}-py3-none-*{target.wheel_tags[0]}*.whl"))
        check(len(wheels) == 1, f"{target.key}: {len(wheels)} wheels")
        for wheel in wheels:
            check(wheel.stat().st_size < MAX_BYTES, f"{wheel.name}: {wheel.stat().st_size} bytes")
            check(wheel.name in sums, f"{wheel.name} is not in SHA256SUMS")
            with zipfile.ZipFile(wheel) as zf:
                names = set(zf.namelist())
                want = {"processman_server/__init__.py", "processman_server/__main__.py",
                        f"processman_server-{version}.data/scripts/{target.exe}",
                        *(f"processman_server-{version}.dist-info/{n}" for n in ("METADATA", "WHEEL", "RECORD"))}
                check(names == want, f"{wheel.name}: files {sorted(names ^ want)} differ")
                exe = zf.read(f"processman_server-{version}.data/scripts/{target.exe}")
                if why := binary_platform_error(exe, target):
                    problems.append(f"{wheel.name}: the binary is {why}")
                info = zf.getinfo(f"processman_server-{version}.data/scripts/{target.exe}")
                check((info.external_attr >> 16) & 0o111 != 0, f"{wheel.name}: the binary is not executable")
                tags = re.findall(r"^Tag: (.+)$", zf.read(f"processman_server-{version}.dist-info/WHEEL").decode(), re.M)
                check(tags == [f"py3-none-{t}" for t in target.wheel_tags], f"{wheel.name}: tags {tags}")

        tgz = dist / f"processman-server-{target.npm_os}-{target.npm_cpu}-{version}.tgz"
        check(tgz.exists(), f"{tgz.name} is missing")
        if tgz.exists():
            check(tgz.stat().st_size < MAX_BYTES, f"{tgz.name}: {tgz.stat().st_size} bytes")
            check(tgz.name in integrity and integrity[tgz.name].startswith("sha512-"), f"{tgz.name}: no integrity")
            with tarfile.open(tgz) as tf:
                names = set(tf.getnames())
                want = {"package/package.json", "package/README.md", f"package/bin/{target.exe}"}
                check(names == want, f"{tgz.name}: files {sorted(names ^ want)} differ")
                member = tf.getmember(f"package/bin/{target.exe}")
                check(member.mode & 0o111 != 0, f"{tgz.name}: the binary is not executable")
                if why := binary_platform_error(tf.extractfile(member).read(), target):
                    problems.append(f"{tgz.name}: the binary is {why}")
                pkg = json.loads(tf.extractfile("package/package.json").read())
                check(pkg["version"] == version and pkg["os"] == [target.npm_os] and pkg["cpu"] == [target.npm_cpu],
                      f"{tgz.name}: package.json {pkg}")

    main = dist / f"processman-server-{version}.tgz"
    check(main.exists(), f"{main.name} is missing")
    if main.exists():
        with tarfile.open(main) as tf:
            names = set(tf.getnames())
            want = {"package/package.json", "package/README.md", "package/bin/processman.js",
                    "package/bin/pocketbase.js", "package/lib/binary.js"}
            check(names == want, f"{main.name}: files {sorted(names ^ want)} differ")
            pkg = json.loads(tf.extractfile("package/package.json").read())
            deps = pkg.get("optionalDependencies", {})
            check(deps == {t.npm_name: version for t in TARGETS}, f"{main.name}: optionalDependencies {deps}")
            check(main.stat().st_size < 64 << 10, f"{main.name}: {main.stat().st_size} bytes")

    for p in problems:
        print(f"dist: {p}", file=sys.stderr)
    if not problems:
        print(f"dist: {len(list(dist.glob('*.whl')))} wheels and {len(list(dist.glob('*.tgz')))} npm packages of "
              f"{version} check out", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
