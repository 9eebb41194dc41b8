"""Print the third-party requirements of some pyproject.toml files, one per line.

Used by the Dockerfiles for their dependencies-only layer: only the pyproject files are
copied in first, so the (slow) dependency install is cached until one of them changes.
The workspace's own packages (every ``[project] name`` among the files given, e.g.
``habla-contracts``) are left out: they are installed from source later with ``--no-deps``.

    python pyproject_deps.py [--only NAME]... [--exclude NAME]... PYPROJECT...

``--only`` keeps just those names (the ingest image installs ``torch`` from the PyTorch CPU
index first); ``--exclude`` drops them. Names compare PEP 503-normalised.

When the uv workspace lockfile lands, replace this with
``uv export --frozen --no-emit-workspace --package <app>``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from the requirement {requirement!r}")
    return normalise(match.group(1))


def third_party(pyprojects: list[Path], only: set[str], exclude: set[str]) -> list[str]:
    projects = [tomllib.loads(path.read_text())["project"] for path in pyprojects]
    local = {normalise(p["name"]) for p in projects}
    keep: set[str] = set()  # pip's resolver combines two lines that name one package
    for project in projects:
        for requirement in project.get("dependencies", []):
            name = requirement_name(requirement)
            if name not in local and name not in exclude and (not only or name in only):
                keep.add(requirement.strip())
    return sorted(keep, key=lambda r: (requirement_name(r), r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", nargs="+", type=Path)
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    lines = third_party(args.pyproject, {normalise(n) for n in args.only}, {normalise(n) for n in args.exclude})
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
