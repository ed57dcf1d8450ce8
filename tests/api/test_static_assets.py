"""Fingerprinted static files: the page names each file with a hash of its content, and a URL with
the current hash is cached for a year; anything else is revalidated."""

import re
from pathlib import Path

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from api.assets import IMMUTABLE, StaticAssets, fingerprint, static_url


def test_pages_name_static_files_with_their_fingerprint_and_get_a_year_of_cache(client: TestClient) -> None:
    page = client.get("/login")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{12}", href), href
    css = client.get(href)
    assert css.status_code == 200 and css.headers["cache-control"] == IMMUTABLE
    assert css.headers["content-type"].startswith("text/css")
    again = client.get(href, headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == IMMUTABLE


def test_a_missing_or_stale_fingerprint_is_revalidated_not_cached(client: TestClient) -> None:
    for url in ("/static/app.css", "/static/app.css?v=000000000000"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache", url
    missing = client.get("/static/nothing-here.css?v=abc")
    assert missing.status_code == 404


def test_changed_content_gets_a_new_url(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("body { color: red; }")
    (tmp_path / "b.css").write_text("body { color: blue; }")
    first = static_url("a.css", directory=tmp_path)
    assert first.startswith("/static/a.css?v=") and first != static_url("b.css", directory=tmp_path)
    assert static_url("a.css", directory=tmp_path) == first  # stable while the file is unchanged
    (tmp_path / "a.css").write_text("body { color: darkred; }")
    changed = static_url("a.css", directory=tmp_path)
    assert changed != first

    app = Starlette(routes=[Mount("/static", StaticAssets(directory=tmp_path))])
    with TestClient(app) as inline:
        assert inline.get(changed).headers["cache-control"] == IMMUTABLE
        assert inline.get(first).headers["cache-control"] == "no-cache"  # the old URL is not pinned to new bytes


def test_fingerprint_is_a_sha256_prefix(tmp_path: Path) -> None:
    (tmp_path / "x.js").write_bytes(b"console.log(1);\n")
    assert fingerprint(tmp_path / "x.js") == "b603d946eb2b"  # sha256 of those bytes, first 12 hex digits


def test_static_files_are_compressed_on_the_wire(client: TestClient) -> None:
    url = static_url("vendor/bpmn-js/bpmn-viewer.production.min.js")
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == IMMUTABLE
    assert len(response.content) > 150_000  # httpx has decompressed it
