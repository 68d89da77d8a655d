#!/usr/bin/env python3
"""Builds the ready pocketbase binary for every platform, and packages it
as Python wheels (processman-server) and npm packages (@processman/server
and one @processman/server-<platform>-<arch> per platform), into dist/.

Usage: python3 packaging/build.py [--out dist] [--targets linux-amd64,...]

Standard library only, besides the Go toolchain and npm. The version is the
repository's VERSION file; the binary reports it with the commit and the
PocketBase it carries (`pocketbase --version`). dist/SHA256SUMS lists every
file; each wheel's RECORD holds the sha256 of its files, and each npm
tarball's integrity (sha512) is in dist/npm-integrity.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"


@dataclass(frozen=True)
class Target:
    goos: str
    goarch: str
    wheel_tags: tuple[str, ...]  # platform tags; a static binary fits every libc
    npm_os: str
    npm_cpu: str

    @property
    def key(self) -> str:
        return f"{self.goos}-{self.goarch}"

    @property
    def exe(self) -> str:
        return "pocketbase.exe" if self.goos == "windows" else "pocketbase"

    @property
    def npm_name(self) -> str:
        return f"@processman/server-{self.npm_os}-{self.npm_cpu}"


TARGETS = [
    Target("linux", "amd64", ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "musllinux_1_1_x86_64"), "linux", "x64"),
    Target("linux", "arm64", ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "musllinux_1_1_aarch64"), "linux", "arm64"),
    Target("darwin", "amd64", ("macosx_10_12_x86_64",), "darwin", "x64"),
    Target("darwin", "arm64", ("macosx_11_0_arm64",), "darwin", "arm64"),
    Target("windows", "amd64", ("win_amd64",), "win32", "x64"),
]

DESCRIPTION = """# processman-server

The ready `pocketbase` binary with the [processman](https://github.com/processman/processman)
plugin: PocketBase that starts, supervises and stops your Python and Node.js
sidecars and routes HTTP to them. Installing it puts `pocketbase` on PATH;
no Go toolchain is needed.

```console
$ pip install "processman[server]"     # the SDK, and this binary
$ pocketbase serve                     # runs pb_processes.json beside pb_data
```

`python -m processman_server ARGS` runs the binary too. This release carries
PocketBase {pocketbase}; `pocketbase --version` says so, with processman's
version and commit.
"""


def run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def pocketbase_version() -> str:
    out = subprocess.run(["go", "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}",
                          "github.com/pocketbase/pocketbase"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_binary(target: Target, version: str, commit: str, out: Path) -> Path:
    path = out / target.key / target.exe
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOOS": target.goos, "GOARCH": target.goarch, "CGO_ENABLED": "0"}
    ldflags = f"-s -w -X main.version={version} -X main.commit={commit}"
    run(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", path, "./cmd/pocketbase"], cwd=REPO, env=env)
    return path


# --------------------------------------------------------------------------
# wheels


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(target: Target, binary: Path, version: str, pocketbase: str, out: Path) -> Path:
    name, dist = "processman_server", f"processman_server-{version}"
    tags = ".".join(target.wheel_tags)
    wheel = out / f"{dist}-py3-none-{tags}.whl"
    files: list[tuple[str, bytes, int]] = []  # (path in the wheel, content, unix mode)
    for source in sorted((PACKAGING / "python" / name).glob("*.py")):
        text = source.read_text().replace("@VERSION@", version).replace("@POCKETBASE_VERSION@", pocketbase)
        files.append((f"{name}/{source.name}", text.encode(), 0o644))
    files.append((f"{dist}.data/scripts/{target.exe}", binary.read_bytes(), 0o755))
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        "Name: processman-server",
        f"Version: {version}",
        f"Summary: The ready pocketbase binary with the processman plugin (PocketBase {pocketbase})",
        "License: MIT",
        "Requires-Python: >=3.8",
        f"Keywords: pocketbase,processman,pocketbase-{pocketbase}",
        "Classifier: License :: OSI Approved :: MIT License",
        "Classifier: Programming Language :: Go",
        "Description-Content-Type: text/markdown",
        "",
        DESCRIPTION.format(pocketbase=pocketbase),
    ])
    files.append((f"{dist}.dist-info/METADATA", metadata.encode(), 0o644))
    wheel_info = ["Wheel-Version: 1.0", "Generator: processman packaging/build.py", "Root-Is-Purelib: false"]
    wheel_info += [f"Tag: py3-none-{tag}" for tag in target.wheel_tags]
    files.append((f"{dist}.dist-info/WHEEL", ("\n".join(wheel_info) + "\n").encode(), 0o644))
    record = [f"{path},{record_hash(data)},{len(data)}" for path, data, _ in files]
    record.append(f"{dist}.dist-info/RECORD,,")
    files.append((f"{dist}.dist-info/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data, mode in files:
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


# --------------------------------------------------------------------------
# npm


def npm_pack(staging: Path, out: Path) -> dict:
    res = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(out)], cwd=staging,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)[0]


def build_npm_platform(target: Target, binary: Path, version: str, pocketbase: str, work: Path, out: Path) -> dict:
    staging = work / target.npm_name.replace("/", "+")
    (staging / "bin").mkdir(parents=True)
    shutil.copy2(binary, staging / "bin" / target.exe)
    (staging / "bin" / target.exe).chmod(0o755)
    (staging / "package.json").write_text(json.dumps({
        "name": target.npm_name,
        "version": version,
        "description": f"The pocketbase binary of @processman/server for {target.npm_os} {target.npm_cpu} (PocketBase {pocketbase})",
        "license": "MIT",
        "os": [target.npm_os],
        "cpu": [target.npm_cpu],
        "files": ["bin"],
        "preferUnplugged": True,
    }, indent=2) + "\n")
    (staging / "README.md").write_text(f"# {target.npm_name}\n\nThe `pocketbase` binary of "
                                       f"[@processman/server](https://www.npmjs.com/package/@processman/server) "
                                       f"for {target.npm_os} {target.npm_cpu}. Install `@processman/server` instead.\n")
    return npm_pack(staging, out)


def build_npm_main(version: str, pocketbase: str, work: Path, out: Path) -> dict:
    staging = work / "@processman+server"
    shutil.copytree(PACKAGING / "npm" / "server", staging)
    for script in (staging / "bin").iterdir():
        script.chmod(0o755)
    (staging / "package.json").write_text(json.dumps({
        "name": "@processman/server",
        "version": version,
        "description": f"The ready pocketbase binary with the processman plugin (PocketBase {pocketbase}): "
                       "`npx processman serve` runs PocketBase with your Node.js and Python sidecars",
        "license": "MIT",
        "type": "module",
        "engines": {"node": ">=18"},
        "bin": {"processman": "bin/processman.js", "pocketbase": "bin/pocketbase.js"},
        "exports": {".": "./lib/binary.js"},
        "files": ["bin", "lib", "README.md"],
        "keywords": ["pocketbase", "processman", f"pocketbase-{pocketbase}"],
        "optionalDependencies": {t.npm_name: version for t in TARGETS},
    }, indent=2) + "\n")
    (staging / "README.md").write_text(DESCRIPTION.format(pocketbase=pocketbase)
                                       .replace("# processman-server", "# @processman/server")
                                       .replace('$ pip install "processman[server]"     # the SDK, and this binary',
                                                "$ npm install @processman/server")
                                       .replace("$ pocketbase serve                     # runs pb_processes.json beside pb_data",
                                                "$ npx processman serve   # runs pb_processes.json beside pb_data")
                                       .replace("`python -m processman_server ARGS` runs the binary too.",
                                                "`npx pocketbase ARGS` runs the binary too."))
    return npm_pack(staging, out)


# --------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--targets", default=",".join(t.key for t in TARGETS),
                        help=f"comma-separated subset of {','.join(t.key for t in TARGETS)}")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    wanted = [t for t in TARGETS if t.key in args.targets.split(",")]
    if not wanted:
        raise SystemExit(f"no known target in {args.targets!r}")
    version = (REPO / "VERSION").read_text().strip()
    commit, pocketbase = git_commit(), pocketbase_version()
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    integrity = {}
    with tempfile.TemporaryDirectory(prefix="processman-dist-") as tmp:
        work = Path(tmp)
        for target in wanted:
            began = time.monotonic()
            binary = build_binary(target, version, commit, work / "bin")
            wheel = build_wheel(target, binary, version, pocketbase, out)
            pack = build_npm_platform(target, binary, version, pocketbase, work / "npm", out)
            integrity[pack["filename"]] = pack["integrity"]
            print(f"{target.key}: {wheel.name}, {pack['filename']} ({time.monotonic() - began:.0f} s)", file=sys.stderr)
        pack = build_npm_main(version, pocketbase, work / "npm", out)
        integrity[pack["filename"]] = pack["integrity"]
    (out / "npm-integrity.json").write_text(json.dumps(integrity, indent=2) + "\n")
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(out.iterdir())
            if p.suffix in (".whl", ".tgz")]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print(f"processman {version} ({commit or 'no commit'}), PocketBase {pocketbase}: {len(sums)} files in {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
