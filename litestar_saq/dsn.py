"""DSN schemes the plugin serves, and the one way to show where a broker is without its credentials.

A leaf module: configuration validation, the backend factory and the backends all use it, and it
imports nothing of ours.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = (
    "ASYNCPG_SCHEMES",
    "MEMORY_SCHEMES",
    "PSYCOPG_SCHEMES",
    "REDIS_SCHEMES",
    "SUPPORTED_SCHEMES",
    "describe_broker",
    "dsn_scheme",
)

REDIS_SCHEMES = ("redis", "rediss", "unix")
ASYNCPG_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
PSYCOPG_SCHEMES = ("postgresql+psycopg",)
MEMORY_SCHEMES = ("memory",)
SUPPORTED_SCHEMES = REDIS_SCHEMES + ASYNCPG_SCHEMES + PSYCOPG_SCHEMES + MEMORY_SCHEMES

MASK = "***"
UNPARSEABLE = "<unparseable dsn>"
SECRET_PARAMETERS = frozenset({"password", "pass", "passwd", "pwd", "secret", "sslpassword", "token"})
"""Query-string parameters whose values are credentials (``?password=`` in Redis and libpq DSNs)."""


def dsn_scheme(dsn: str) -> str:
    """Return the lower-cased scheme of ``dsn`` (``"redis"`` for ``"redis://host"``)."""
    return dsn.split("://", 1)[0].lower() if "://" in dsn else ""


def describe_broker(broker: object) -> str:
    """Say where ``broker`` is, for logs, error messages and ``workers status``; never a password.

    Args:
        broker: a DSN (its password, in the user info or a ``?password=`` parameter, becomes ``***``;
            multi-host and unix-socket DSNs are fine; text that is no URL gives ``<unparseable dsn>``),
            a ``redis.asyncio.Redis`` client (``host:port/db`` or ``unix://path``), or any other
            broker instance (``broker_instance (TypeName)``).
    """
    if isinstance(broker, str):
        return _mask_dsn(broker)
    connection_kwargs = getattr(getattr(broker, "connection_pool", None), "connection_kwargs", None)
    if isinstance(connection_kwargs, dict):
        return _redis_address(connection_kwargs)
    return f"broker_instance ({type(broker).__name__})"


def _mask_dsn(dsn: str) -> str:
    # Split by hand rather than through urlsplit's netloc properties: those raise on the
    # comma-separated hosts of a multi-host PostgreSQL DSN (``postgresql://u:pw@h1:5432,h2:5433/db``).
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return UNPARSEABLE
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}"
    query = (
        "&".join(_mask_parameter(parameter) for parameter in parts.query.split("&")) if parts.query else ""
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return dsn
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else f"{netloc}{parts.path}"
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _mask_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    return f"{name}={MASK}" if equals and name.lower() in SECRET_PARAMETERS else parameter


def _redis_address(connection_kwargs: dict[str, object]) -> str:
    if "path" in connection_kwargs:
        return f"unix://{connection_kwargs['path']}"
    host = connection_kwargs.get("host", "localhost")
    return f"{host}:{connection_kwargs.get('port', 6379)}/{connection_kwargs.get('db', 0)}"
