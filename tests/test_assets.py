"""The vendored front-end files (api/static/vendor/) are exactly the packages package-lock.json pins.

The copies and the one built bundle (the modeler's properties panel, from api/static_src/modeler/) are
committed so that running and testing need Python only. Refresh them with
`npm ci && python3 scripts/vendor_assets.py`; the byte-for-byte comparisons (copies against the
package, the bundle against a fresh esbuild run) need node_modules."""

import hashlib
import json
from pathlib import Path

import pytest

from scripts import vendor_assets

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "api" / "static" / "vendor"
MANIFEST: dict[str, dict] = json.loads((VENDOR / "MANIFEST.json").read_text(encoding="utf-8"))
LOCKED = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))["packages"]
PACKAGE_JSON = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
PINNED = PACKAGE_JSON["dependencies"]
COPIED = {name: entry for name, entry in MANIFEST.items() if "built_with" not in entry}
BUILT = {name: entry for name, entry in MANIFEST.items() if "built_with" in entry}
NEEDS_NODE_MODULES = pytest.mark.skipif(
    not (ROOT / "node_modules").is_dir(),
    reason="node_modules absent (no Node.js needed to run mealroll); `npm ci` first to compare the vendored "
           "files byte for byte and to rebuild the modeler panel bundle")


def test_every_vendored_file_is_from_a_pinned_package_at_its_locked_version() -> None:
    assert {entry["package"] for entry in MANIFEST.values()} == set(PINNED)
    for name, entry in MANIFEST.items():
        package = entry["package"]
        assert LOCKED[""]["dependencies"][package] == PINNED[package]
        assert entry["version"] == LOCKED[f"node_modules/{package}"]["version"] == PINNED[package], name
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == entry["sha256"], \
            f"{name} was edited by hand: run npm ci && python3 scripts/vendor_assets.py"


def test_the_bundle_is_built_from_our_source_by_the_pinned_esbuild() -> None:
    assert set(BUILT) == {vendor_assets.BUNDLE, vendor_assets.BUNDLE_LICENSES}
    builder = PACKAGE_JSON["devDependencies"][vendor_assets.BUILDER]
    assert LOCKED[""]["devDependencies"][vendor_assets.BUILDER] == builder
    assert LOCKED[f"node_modules/{vendor_assets.BUILDER}"]["version"] == builder
    for name, entry in BUILT.items():
        assert entry["source"] == vendor_assets.BUNDLE_ENTRY and (ROOT / entry["source"]).is_file(), name
        assert entry["built_with"] == f"{vendor_assets.BUILDER} {builder}", name
        # Every bundled package at the version the lock file pins (the lock is the bill of materials).
        for package, version in entry["bundled"].items():
            assert LOCKED[f"node_modules/{package}"]["version"] == version, (name, package)
        assert {"bpmn-js-properties-panel", "@bpmn-io/properties-panel"} <= set(entry["bundled"])


def test_the_bundle_names_every_bundled_package_and_carries_its_licence_texts() -> None:
    (entry,) = [BUILT[vendor_assets.BUNDLE]]
    text = (VENDOR / vendor_assets.BUNDLE).read_text(encoding="utf-8")
    banner = text.split("*/", 1)[0]
    licences = (VENDOR / vendor_assets.BUNDLE_LICENSES).read_text(encoding="utf-8")
    for package, version in entry["bundled"].items():
        assert f"{package} {version}" in banner, package
        assert f"{package} {version} (" in licences, package
    assert "Permission is hereby granted, free of charge" in licences  # the MIT notice itself, not a link


def test_the_vendor_folder_holds_the_manifest_files_only() -> None:
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    assert present == set(MANIFEST) | {"MANIFEST.json"}


def test_the_scripts_carry_their_versions_in_their_banners() -> None:
    for name, entry in MANIFEST.items():
        if name.endswith(".js"):
            # Anywhere in the file: ECharts states its version in its code, after 300 KB of zrender.
            text = (VENDOR / name).read_bytes().decode("utf-8")
            assert entry["version"] in text, name


@NEEDS_NODE_MODULES
def test_vendored_files_are_byte_identical_to_node_modules() -> None:
    for name, entry in COPIED.items():
        installed = ROOT / "node_modules" / entry["package"]
        version = json.loads((installed / "package.json").read_text(encoding="utf-8"))["version"]
        assert version == entry["version"], f"node_modules/{entry['package']} is {version}: run npm ci"
        assert (installed / entry["source"]).read_bytes() == (VENDOR / name).read_bytes(), name


@NEEDS_NODE_MODULES
def test_the_bundle_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    installed = json.loads((ROOT / "node_modules" / vendor_assets.BUILDER / "package.json").read_text(encoding="utf-8"))
    assert installed["version"] == PACKAGE_JSON["devDependencies"][vendor_assets.BUILDER], "run npm ci"
    bundled = vendor_assets.build_bundle(tmp_path)
    assert bundled == BUILT[vendor_assets.BUNDLE]["bundled"]
    for name in BUILT:
        assert (tmp_path / name).read_bytes() == (VENDOR / name).read_bytes(), \
            f"{name} is not what {vendor_assets.BUNDLE_ENTRY} builds to: run python3 scripts/vendor_assets.py"
