"""The dashboard test app for ``litestar run`` in a subprocess: queue ``$TEST_QUEUE`` on memory://."""

from __future__ import annotations

import os

from tests.web.apps import make_app

app = make_app(os.environ["TEST_QUEUE"], "memory", web_live_max_stream_s=120.0, web_live_heartbeat_s=1.0)
