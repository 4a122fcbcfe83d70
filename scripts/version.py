#!/usr/bin/env python3
"""The one version of tokenkeeper, and where it is stamped.

The source of truth is `[workspace.package]` in the root Cargo.toml: `version` (every crate
inherits it) and `repository` (the URL every package manifest points at). This script checks
that every other manifest says the same, and can stamp a new version everywhere at once.

    scripts/version.py                 # print the version
    scripts/version.py --check         # fail (exit 1) if any manifest disagrees
    scripts/version.py --set 0.2.0     # write 0.2.0 into Cargo.toml and stamp every manifest

The Python wheel takes its version from Cargo itself (maturin, `dynamic = ["version"]`), so
it cannot drift; `--check` verifies that pyproject.toml keeps it dynamic, and
scripts/test-python.sh checks the version recorded in the built wheel.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (file, pattern): each pattern has one group `v` (the stamped value). Every match in the file
# must equal the source value, and each file must match at least once.
VERSION_STAMPS = [
    ("Package.swift", r'^let version = "(?P<v>[^"]+)"$'),
    ("kotlin/gradle.properties", r"^VERSION_NAME=(?P<v>\S+)$"),
    ("flutter/pubspec.yaml", r"^version: (?P<v>\S+)$"),
    ("flutter/ios/tokenkeeper.podspec", r"^  s\.version\s*= '(?P<v>[^']+)'$"),
    ("flutter/android/build.gradle", r"^version '(?P<v>[^']+)'$"),
    ("CHANGELOG.md", r"^## \[(?P<v>[0-9][^\]]*)\] - "),
    # Install instructions quote the version; they must quote the current one.
    ("swift/README.md", r'\.package\(url: "[^"]+", from: "(?P<v>[^"]+)"\)'),
    ("kotlin/README.md", r"dev\.tokenkeeper:tokenkeeper(?:-jvm)?:(?P<v>[0-9][0-9A-Za-z.+-]*)"),
    ("flutter/README.md", r"--git-ref=v(?P<v>[0-9][0-9A-Za-z.+-]*)"),
    ("README.md", r'\.package\(url: "[^"]+", from: "(?P<v>[^"]+)"\)'),
    ("README.md", r"dev\.tokenkeeper:tokenkeeper:(?P<v>[0-9][0-9A-Za-z.+-]*)"),
    ("README.md", r"--git-ref=v(?P<v>[0-9][0-9A-Za-z.+-]*)"),
]

REPOSITORY_STAMPS = [
    ("Package.swift", r'^let repository = "(?P<v>[^"]+)"$'),
    ("kotlin/gradle.properties", r"^POM_URL=(?P<v>\S+)$"),
    ("flutter/pubspec.yaml", r"^repository: (?P<v>\S+)$"),
    ("flutter/ios/tokenkeeper.podspec", r"^  s\.homepage\s*= '(?P<v>[^']+)'$"),
    ("python/pyproject.toml", r'^Repository = "(?P<v>[^"]+)"$'),
]

# Only the first match in CHANGELOG.md (the newest release) is held to the current version.
FIRST_MATCH_ONLY = {"CHANGELOG.md"}


def workspace_package() -> dict[str, str]:
    text = (ROOT / "Cargo.toml").read_text()
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[)", text, re.M | re.S)
    if not section:
        sys.exit("version: no [workspace.package] in Cargo.toml")
    values = dict(re.findall(r'^(\w[\w-]*)\s*=\s*"([^"]*)"', section.group(1), re.M))
    for key in ("version", "repository"):
        if key not in values:
            sys.exit(f"version: [workspace.package] has no {key}")
    return values


def check_stamps(stamps, expected: str, what: str) -> list[str]:
    problems = []
    for rel, pattern in stamps:
        path = ROOT / rel
        if not path.is_file():
            problems.append(f"{rel}: missing (expected the {what} {expected})")
            continue
        found = [m.group("v") for m in re.finditer(pattern, path.read_text(), re.M)]
        if rel in FIRST_MATCH_ONLY:
            found = found[:1]
        if not found:
            problems.append(f"{rel}: no {what} found (pattern {pattern})")
        for value in found:
            if value != expected:
                problems.append(f"{rel}: {what} {value}, but Cargo.toml says {expected}")
    return problems


def check_python() -> list[str]:
    text = (ROOT / "python/pyproject.toml").read_text()
    problems = []
    if not re.search(r'^dynamic = \[[^\]]*"version"[^\]]*\]', text, re.M):
        problems.append('python/pyproject.toml: the version must stay dynamic = ["version"] (maturin reads Cargo.toml)')
    if re.search(r"^version\s*=", text, re.M):
        problems.append("python/pyproject.toml: a static version would drift from Cargo.toml; remove it")
    return problems


def stamp(stamps, new: str) -> None:
    for rel, pattern in stamps:
        if rel in FIRST_MATCH_ONLY:
            continue  # a new CHANGELOG section is written by hand
        path = ROOT / rel
        text = path.read_text()

        def put(m: re.Match) -> str:
            start, end = m.span("v")
            return m.group(0)[: start - m.start()] + new + m.group(0)[end - m.start():]

        path.write_text(re.sub(pattern, put, text, flags=re.M))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if any manifest disagrees with Cargo.toml")
    group.add_argument("--set", metavar="VERSION", help="write VERSION into Cargo.toml and stamp it everywhere")
    args = parser.parse_args()

    package = workspace_package()
    if args.set:
        if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?", args.set):
            sys.exit(f"version: {args.set!r} is not a semantic version")
        cargo = ROOT / "Cargo.toml"
        text = cargo.read_text()
        text = re.sub(
            r'(^\[workspace\.package\]\n(?:(?!^\[).*\n)*?version\s*=\s*")[^"]*(")',
            lambda m: m.group(1) + args.set + m.group(2), text, count=1, flags=re.M)
        cargo.write_text(text)
        stamp(VERSION_STAMPS, args.set)
        # The workspace members' versions are recorded in Cargo.lock too.
        subprocess.run(["cargo", "update", "--workspace", "--offline", "--quiet"], cwd=ROOT, check=True)
        print(f"version: stamped {args.set}; add a '## [{args.set}] - DATE' section to CHANGELOG.md")
        package = workspace_package()
        args.check = True

    if not args.check:
        print(package["version"])
        return 0

    problems = check_stamps(VERSION_STAMPS, package["version"], "version")
    problems += check_stamps(REPOSITORY_STAMPS, package["repository"], "repository URL")
    problems += check_python()
    for p in problems:
        print(f"version: {p}", file=sys.stderr)
    if problems:
        print(f"version: FAILED: {len(problems)} disagreement(s) with Cargo.toml", file=sys.stderr)
        return 1
    print(f"version: ok: {package['version']} ({package['repository']}) in "
          f"{len({rel for rel, _ in VERSION_STAMPS + REPOSITORY_STAMPS}) + 1} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
