"""Copy the front-end files the pages use from node_modules/ into api/static/vendor/, and build the one
bundle that npm does not ship ready for a browser.

Run after `npm ci` (package-lock.json pins the versions): `npm ci && python3 scripts/vendor_assets.py`.
The copies are committed, so running and testing mealroll needs Python only, and nothing is fetched
from a CDN at run time (county networks are often closed). MANIFEST.json records where each copy
came from; tests/test_assets.py checks it against package-lock.json and, when node_modules is
present, byte for byte against the package (copies) or against a fresh build (the bundle).

The modeler's properties panel (bpmn-js-properties-panel and @bpmn-io/properties-panel) ships ES
modules only. esbuild (pinned in devDependencies) bundles it with mealroll's properties provider
(api/static_src/modeler/) into one minified IIFE that only /processes/…/edit loads, next to the
bpmn-js modeler build it plugs into. The bundled packages' licence texts go beside it.
"""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
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
    "@bpmn-io/properties-panel": ["dist/assets/properties-panel.css", "LICENSE"],
    "bpmn-js-properties-panel": ["LICENSE"],
}

# The bundle: entry source (ours) → vendored file; the package whose version it carries.
BUNDLE_ENTRY = "api/static_src/modeler/panel.js"
BUNDLE = "modeler-panel/modeler-panel.min.js"
BUNDLE_LICENSES = "modeler-panel/THIRD-PARTY-LICENSES.txt"
BUNDLE_PACKAGE = "bpmn-js-properties-panel"
BUILDER = "esbuild"


def locked_versions(root: Path = ROOT) -> dict[str, str]:
    packages = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    return {name: packages[f"node_modules/{name}"]["version"] for name in [*FILES, BUILDER]}


def _package_of(path: str) -> str:
    parts = path.rsplit("node_modules/", 1)[1].split("/")
    return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]


def _licence_text(package: str, modules: Path) -> str:
    folder = modules / package
    meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().startswith(("license", "licence")))
    heading = f"{package} {meta['version']} ({meta.get('license', 'no licence field')})"
    if found:
        body = found[0].read_text(encoding="utf-8").strip()
    else:
        author = meta.get("author")
        body = (f"Licence {meta.get('license')} per its package.json; the package ships no licence file. "
                f"Author: {author.get('name') if isinstance(author, dict) else author}.")
    return f"{heading}\n{'=' * len(heading)}\n{body}\n"


def build_bundle(out_dir: Path, root: Path = ROOT) -> dict[str, str]:
    """Build the modeler panel bundle and its licence file into out_dir (same relative names as in vendor/).

    Returns the bundled packages and their versions. The same inputs give the same bytes: the test
    rebuilds into a temporary folder and compares."""
    modules = root / "node_modules"
    esbuild = modules / ".bin" / "esbuild"
    with tempfile.TemporaryDirectory() as tmp:
        raw, meta = Path(tmp) / "bundle.js", Path(tmp) / "meta.json"
        # Paths relative to the repository: the output must not depend on where it is checked out.
        subprocess.run([str(esbuild), BUNDLE_ENTRY, "--bundle", "--minify", "--format=iife", "--target=es2019",
                        "--charset=utf8", "--legal-comments=eof", "--log-level=warning",
                        f"--outfile={raw}", f"--metafile={meta}"], cwd=root, check=True)
        inputs = json.loads(meta.read_text(encoding="utf-8"))["inputs"]
        code = raw.read_text(encoding="utf-8")
    bundled = {p: json.loads((modules / p / "package.json").read_text(encoding="utf-8"))["version"]
               for p in sorted({_package_of(i) for i in inputs if "node_modules/" in i})}
    versions = locked_versions(root)
    banner = (f"/*! mealroll modeler panel: {BUNDLE_PACKAGE} {versions[BUNDLE_PACKAGE]} and "
              f"@bpmn-io/properties-panel {versions['@bpmn-io/properties-panel']} (MIT, Camunda Services GmbH) "
              f"with mealroll's properties provider ({BUNDLE_ENTRY.rsplit('/', 1)[0]}/), built by scripts/vendor_assets.py "
              f"with {BUILDER} {versions[BUILDER]}. Bundled: "
              + ", ".join(f"{p} {v}" for p, v in bundled.items())
              + f". Licence texts: {Path(BUNDLE_LICENSES).name} beside this file. */\n")
    target = out_dir / BUNDLE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(banner + code, encoding="utf-8")
    notices = "\n".join(_licence_text(p, modules) for p in bundled)
    (out_dir / BUNDLE_LICENSES).write_text(
        f"Third-party software in {Path(BUNDLE).name}, with the licence each is distributed under.\n\n" + notices,
        encoding="utf-8")
    return bundled


def main() -> int:
    modules = ROOT / "node_modules"
    versions = locked_versions()
    manifest: dict[str, dict[str, object]] = {}
    for package in [*FILES, BUILDER]:
        installed = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))["version"]
        if installed != versions[package]:
            print(f"node_modules/{package} is {installed}, package-lock.json says {versions[package]}: run npm ci",
                  file=sys.stderr)
            return 1
    for package, sources in FILES.items():
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
    bundled = build_bundle(VENDOR)
    for name in (BUNDLE, BUNDLE_LICENSES):
        manifest[name] = {
            "package": BUNDLE_PACKAGE, "version": versions[BUNDLE_PACKAGE], "source": BUNDLE_ENTRY,
            "built_with": f"{BUILDER} {versions[BUILDER]}", "bundled": bundled,
            "sha256": hashlib.sha256((VENDOR / name).read_bytes()).hexdigest(),
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
