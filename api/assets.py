"""Static files with content fingerprints: a page names `/static/app.css?v=<hash>`, and a URL that
carries the current hash is cached by the browser for a year. On a slow rural link a page then costs
its HTML only; a changed file gets a new URL, so nobody keeps a stale copy."""

import hashlib
import os
from pathlib import Path

from starlette.datastructures import Headers, QueryParams
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
# Without a fingerprint (or with a stale one) the browser must ask again; the ETag keeps that a 304.
REVALIDATE = "no-cache"

_hashes: dict[str, tuple[tuple[int, int], str]] = {}


def fingerprint(path: str | os.PathLike[str]) -> str:
    """The first 12 hex digits of the file's sha256, recomputed only when its size or mtime changes."""
    key = os.fspath(path)
    stat = os.stat(key)
    seen = _hashes.get(key)
    if seen is not None and seen[0] == (stat.st_mtime_ns, stat.st_size):
        return seen[1]
    digest = hashlib.sha256(Path(key).read_bytes()).hexdigest()[:12]
    _hashes[key] = ((stat.st_mtime_ns, stat.st_size), digest)
    return digest


def static_url(name: str, directory: Path = STATIC_DIR) -> str:
    """`static_url('app.css')` → `/static/app.css?v=3f2a…`, for templates."""
    return f"/static/{name}?v={fingerprint(directory / name)}"


class StaticAssets(StaticFiles):
    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        wanted = QueryParams(scope.get("query_string", b"")).get("v")
        cache = IMMUTABLE if wanted and wanted == fingerprint(full_path) else REVALIDATE
        response = FileResponse(full_path, status_code=status_code, stat_result=stat_result,
                                headers={"Cache-Control": cache})
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response
