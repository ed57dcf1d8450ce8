"""Copy the front-end files the pages use from node_modules/ into api/static/vendor/.

Run after `npm ci` (package-lock.json pins the versions): `npm ci && python3 scripts/vendor_assets.py`.
The copies are committed, so running and testing mealroll needs Python only, and nothing is fetched
from a CDN at run time (county networks are often closed). MANIFEST.json records where each copy
came from; tests/test_assets.py checks it against package-lock.json and, when node_modules is
present, byte for byte against the package.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "api" / "static" / "vendor"

# Only what a page loads. The viewer draws task markers as SVG paths; bpmn-js' icon font (bpmn-font/)
# is for the modeler's palette and context pad (/processes/…/edit), in the two formats browsers load.
FILES: dict[str, list[str]] = {
    "htmx.org": ["dist/htmx.min.js", "LICENSE"],
    "bpmn-js": ["dist/bpmn-viewer.production.min.js", "dist/assets/diagram-js.css", "dist/assets/bpmn-js.css",
                "dist/bpmn-modeler.production.min.js", "dist/assets/bpmn-font/css/bpmn.css",
                "dist/assets/bpmn-font/font/bpmn.woff2", "dist/assets/bpmn-font/font/bpmn.woff", "LICENSE"],
    # The dashboard's charts: the "common" build (line, bar, pie), a third of the full one.
    "echarts": ["dist/echarts.common.min.js", "LICENSE"],
}


def locked_versions(root: Path = ROOT) -> dict[str, str]:
    packages = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    return {name: packages[f"node_modules/{name}"]["version"] for name in FILES}


def main() -> int:
    modules = ROOT / "node_modules"
    versions = locked_versions()
    manifest: dict[str, dict[str, str]] = {}
    for package, sources in FILES.items():
        installed = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))["version"]
        if installed != versions[package]:
            print(f"node_modules/{package} is {installed}, package-lock.json says {versions[package]}: run npm ci",
                  file=sys.stderr)
            return 1
        for source in sources:
            # The font's CSS names its files as ../font/…: that folder pair keeps its shape.
            kept = source.removeprefix("dist/assets/") if "/bpmn-font/" in source else Path(source).name
            target = Path(package) / kept
            (VENDOR / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(modules / package / source, VENDOR / target)
            manifest[target.as_posix()] = {
                "package": package, "version": versions[package], "source": source,
                "sha256": hashlib.sha256((VENDOR / target).read_bytes()).hexdigest(),
            }
    stale = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - set(manifest) - {
        "MANIFEST.json"}
    for name in sorted(stale):
        (VENDOR / name).unlink()
    (VENDOR / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name, entry in sorted(manifest.items()):
        print(f"{entry['package']}@{entry['version']}  {name}  {(VENDOR / name).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
