"""Static files: SAQ's bundled UI read from the installed ``saq`` package, and our own small additions.

SAQ ships ``pico.min.css`` and ``snabbdom.js`` only as ``.gz`` files. They are served as the names the
page asks for, with their real Content-Type and ``Content-Encoding: gzip`` when the client accepts
gzip, and decompressed here when it does not (a plain static mount answers 404 or sends gzip bytes
that the browser cannot read: SAQ issue #164).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.params import FromPath

from litestar_saq.web.context import get_or_head
from litestar_saq.web.security import SECURITY_HEADERS

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from litestar.handlers import HTTPRouteHandler

__all__ = ("OWN_ASSET_PREFIX", "Asset", "accepts_gzip", "build_static_handler", "load_assets")

OWN_ASSET_PREFIX = "litestar-saq/"
"""Our files live under ``{root}/static/litestar-saq/`` so they never shadow a file of a newer SAQ."""

_MEDIA_TYPES = MappingProxyType({".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"})


@dataclass(frozen=True)
class Asset:
    """One static file held in memory: the files are small and never change while the app runs."""

    body: bytes
    media_type: str
    gzipped: bool
    """``body`` is gzip-compressed (SAQ's ``.gz`` files)."""
    etag: str

    @classmethod
    def from_file(cls, file: Traversable, name: str) -> Asset:
        """Read ``file``, served under ``name`` (``"pico.min.css"`` for ``pico.min.css.gz``)."""
        body = file.read_bytes()
        media_type = _MEDIA_TYPES.get(PurePosixPath(name).suffix, "application/octet-stream")
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return cls(body=body, media_type=media_type, gzipped=file.name.endswith(".gz"), etag=etag)


def _saq_static_dir() -> Traversable:
    return resources.files("saq.web").joinpath("static")


def _own_static_dir() -> Traversable:
    return resources.files("litestar_saq.web").joinpath("static")


def load_assets() -> dict[str, Asset]:
    """Return every servable file by its URL path below ``{root}/static/``."""
    assets: dict[str, Asset] = {}
    for file in _saq_static_dir().iterdir():
        if file.is_file():
            name = file.name.removesuffix(".gz")
            # Prefer a plain file if a future SAQ ships both; the .gz is then only a sibling.
            if name not in assets or not file.name.endswith(".gz"):
                assets[name] = Asset.from_file(file, name)
    for file in _own_static_dir().iterdir():
        if file.is_file() and not file.name.startswith("."):
            assets[OWN_ASSET_PREFIX + file.name] = Asset.from_file(file, file.name)
    return assets


def accepts_gzip(accept_encoding: str) -> bool:
    """Tell whether an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*`` without ``q=0``)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        allowed[coding.strip().lower()] = quality > 0
    return allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", False)))


def build_static_handler(assets: dict[str, Asset], *, include_in_schema: bool) -> HTTPRouteHandler:
    """Return the handler for ``GET {root}/static/{path}``; it is public so the login page can style."""

    @get_or_head(
        "/static/{asset_path:path}",
        include_in_schema=include_in_schema,
        name="saq_web_static",
        sync_to_thread=False,
    )
    def serve_static(asset_path: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        """Serve a dashboard asset with its Content-Type, gzip-encoded when the client accepts it."""
        asset = assets.get(asset_path.lstrip("/"))
        if asset is None:
            return Response(
                b"asset not found", status_code=404, media_type="text/plain", headers=dict(SECURITY_HEADERS)
            )
        send_gzip = asset.gzipped and accepts_gzip(request.headers.get("accept-encoding", ""))
        # The two encodings of one file are different representations, so they get different tags.
        etag = asset.etag if send_gzip or not asset.gzipped else asset.etag[:-1] + '-identity"'
        # Revalidate every time: the files change when saq or litestar-saq is upgraded.
        headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
        if asset.gzipped:
            headers["Vary"] = "Accept-Encoding"
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        if send_gzip:
            headers["Content-Encoding"] = "gzip"
            body = asset.body
        else:
            body = gzip.decompress(asset.body) if asset.gzipped else asset.body
        return Response(body, media_type=asset.media_type, headers=headers)

    return serve_static
