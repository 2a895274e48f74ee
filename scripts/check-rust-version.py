"""Fails when a dependency declares a newer rust-version than Cargo.toml's.

Reads `cargo metadata --format-version 1` on stdin. Only one toolchain can be installed on
the CI machine, so the declared minimum cannot be built with; this and clippy's
incompatible_msrv lint (std APIs newer than the minimum) check it instead.
"""
import json
import sys


def version(text):
    return tuple(int(x) for x in text.split("."))


meta = json.load(sys.stdin)
root = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
ours = root["rust_version"]
newer = [
    f"{p['name']} {p['version']} needs Rust {p['rust_version']}"
    for p in meta["packages"]
    if p.get("rust_version") and version(p["rust_version"]) > version(ours)
]
if newer:
    sys.exit(f"rust-version {ours} in Cargo.toml is too old for:\n  " + "\n  ".join(newer))
print(f"rust-version {ours} covers all {len(meta['packages']) - 1} dependencies")
