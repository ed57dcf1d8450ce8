"""The vendored front-end files (api/static/vendor/) are exactly the packages package-lock.json pins.

The copies are committed so that running and testing need Python only. Refresh them with
`npm ci && python3 scripts/vendor_assets.py`; the byte-for-byte comparison runs where node_modules
exists."""

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "api" / "static" / "vendor"
MANIFEST: dict[str, dict[str, str]] = json.loads((VENDOR / "MANIFEST.json").read_text(encoding="utf-8"))
LOCKED = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))["packages"]
PINNED = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["dependencies"]


def test_every_vendored_file_is_from_a_pinned_package_at_its_locked_version() -> None:
    assert {entry["package"] for entry in MANIFEST.values()} == set(PINNED)
    for name, entry in MANIFEST.items():
        package = entry["package"]
        assert LOCKED[""]["dependencies"][package] == PINNED[package]
        assert entry["version"] == LOCKED[f"node_modules/{package}"]["version"] == PINNED[package], name
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == entry["sha256"], \
            f"{name} was edited by hand: run npm ci && python3 scripts/vendor_assets.py"


def test_the_vendor_folder_holds_the_manifest_files_only() -> None:
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    assert present == set(MANIFEST) | {"MANIFEST.json"}


def test_the_scripts_carry_their_versions_in_their_banners() -> None:
    for name, entry in MANIFEST.items():
        if name.endswith(".js"):
            # Anywhere in the file: ECharts states its version in its code, after 300 KB of zrender.
            text = (VENDOR / name).read_bytes().decode("utf-8")
            assert entry["version"] in text, name


@pytest.mark.skipif(not (ROOT / "node_modules").is_dir(),
                    reason="node_modules absent (no Node.js needed to run mealroll); "
                           "`npm ci` first to compare the vendored files byte for byte")
def test_vendored_files_are_byte_identical_to_node_modules() -> None:
    for name, entry in MANIFEST.items():
        installed = ROOT / "node_modules" / entry["package"]
        version = json.loads((installed / "package.json").read_text(encoding="utf-8"))["version"]
        assert version == entry["version"], f"node_modules/{entry['package']} is {version}: run npm ci"
        assert (installed / entry["source"]).read_bytes() == (VENDOR / name).read_bytes(), name
