"""Run the supervisor without the Litestar CLI, with a given start method.

    python -m tests.workers.apps.supervise forkserver <queue>

The queue goes to ``tests.workers.apps.workers_app`` through ``TEST_QUEUE``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal, cast

from litestar_saq.supervisor import Supervisor, supervise_until_signalled

StartMethod = Literal["spawn", "forkserver", "fork"]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    start_method, queue_name = sys.argv[1], sys.argv[2]
    os.environ["TEST_QUEUE"] = queue_name
    supervisor = Supervisor(
        "tests.workers.apps.workers_app:app",
        {queue_name: 2},
        drain_timeout_s=20,
        start_method=cast("StartMethod", start_method),
    )
    sys.exit(supervise_until_signalled(supervisor))
