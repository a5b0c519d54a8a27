"""An app whose ``SAQPlugin`` has no queues."""

from litestar import Litestar

from litestar_saq import SAQConfig, SAQPlugin

app = Litestar(plugins=[SAQPlugin(SAQConfig())])
