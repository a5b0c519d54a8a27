"""An app without ``SAQPlugin``."""

from litestar import Litestar

app = Litestar()
