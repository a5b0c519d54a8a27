"""DSN schemes the plugin serves, and the one way to show where a broker is without its credentials.

A leaf module: configuration validation, the backend factory and the backends all use it, and it
imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import unquote_plus, urlsplit

__all__ = (
    "ASYNCPG_SCHEMES",
    "CLUSTER_REFUSAL",
    "MEMORY_SCHEMES",
    "PSYCOPG_SCHEMES",
    "REDIS_CLUSTER_SCHEMES",
    "REDIS_SCHEMES",
    "REDIS_SENTINEL_SCHEMES",
    "SUPPORTED_SCHEMES",
    "describe_broker",
    "dsn_scheme",
    "masked_repr",
    "redact",
)

REDIS_SCHEMES = ("redis", "rediss", "unix")
REDIS_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
REDIS_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
"""Refused with the reason (``CLUSTER_REFUSAL``), not as an unknown scheme."""
CLUSTER_REFUSAL = (
    "Redis Cluster is not supported: SAQ's Lua scripts and transactions touch several keys of a queue "
    "at once (saq:<queue>:queued, saq:<queue>:active, saq:job:<queue>:<key>…) and those keys carry no "
    "hash tag, so a cluster spreads them over slots and refuses the calls (CROSSSLOT). Adding hash tags "
    "would change the key names SAQ's own workers use. One queue's load fits one Redis primary: use "
    "Redis Sentinel for failover (dsn='redis+sentinel://host:26379,host2:26379/mymaster/0'), and give "
    "heavy queues Redis servers of their own."
)
"""Why ``redis+cluster://`` DSNs and ``RedisCluster`` clients are refused, and what to use instead."""
ASYNCPG_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
PSYCOPG_SCHEMES = ("postgresql+psycopg",)
MEMORY_SCHEMES = ("memory",)
SUPPORTED_SCHEMES = (
    REDIS_SCHEMES + REDIS_SENTINEL_SCHEMES + ASYNCPG_SCHEMES + PSYCOPG_SCHEMES + MEMORY_SCHEMES
)

MASK = "***"
UNPARSEABLE = "<unparseable dsn>"
SECRET_PARAMETER = re.compile(
    r"pass|pwd|token|secret|credential|api[-_]?key|private[-_]?key|auth", re.IGNORECASE
)
"""Query-string and keyword names whose values are credentials: ``password``, ``pass``, ``sslpassword``,
``token``, ``access_token``, ``client_secret``, ``api_key``… (matched anywhere in the name)."""
_URL_IN_TEXT = re.compile(
    # A quoted URL (as repr() shows one) ends at its closing quote, a bare one at the next blank.
    r"""(?P<quote>['"])(?P<quoted>[A-Za-z][A-Za-z0-9+.-]*://(?:(?!(?P=quote))[^\\]|\\.)*)(?P=quote)"""
    r"|(?P<bare>[A-Za-z][A-Za-z0-9+.-]*://\S*)"
)
_KEYWORD_PAIR = re.compile(
    r"""(?P<name>[\w.-]+)(?P<equals>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|\S+)"""
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def dsn_scheme(dsn: str) -> str:
    """Return the lower-cased scheme of ``dsn`` (``"redis"`` for ``"redis://host"``)."""
    return dsn.split("://", 1)[0].lower() if "://" in dsn else ""


def describe_broker(broker: object) -> str:
    """Say where ``broker`` is, for logs, error messages, reprs, the CLI and the dashboard; never a secret.

    The one credential-masking function of the package: everything that shows a broker goes through
    it (``redact`` applies it to every URL inside a longer text). It never raises.

    Args:
        broker: a DSN (the password in its user info and the value of every password-, token- or
            secret-like query parameter become ``***``; multi-host, unix-socket and keyword/value DSNs
            are fine; a URL that cannot be parsed gives ``<unparseable dsn>``), a
            ``redis.asyncio.Redis`` client (``host:port/db`` or ``unix://path``), or any other broker
            instance (``broker_instance (TypeName)``).
    """
    try:
        if isinstance(broker, str):
            return _mask_dsn(broker)
        pool = getattr(broker, "connection_pool", None)
        if getattr(pool, "service_name", None) is not None:
            return _sentinel_address(pool)
        connection_kwargs = getattr(pool, "connection_kwargs", None)
        if isinstance(connection_kwargs, dict):
            return _redis_address(connection_kwargs)
    except Exception:  # showing a broker must never be what fails
        return UNPARSEABLE if isinstance(broker, str) else "broker_instance"
    return f"broker_instance ({type(broker).__name__})"


def redact(text: str) -> str:
    """Return ``text`` with every URL in it shown as ``describe_broker`` shows a DSN.

    For messages that may quote a DSN they did not build, such as a driver's exception text. A quoted
    URL ends at its closing quote, an unquoted one at the first blank.
    """
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    if match["bare"] is not None:
        return describe_broker(match["bare"])
    return match["quote"] + describe_broker(match["quoted"]) + match["quote"]


def masked_repr(config: Any) -> str:
    """Return a dataclass config's ``repr()`` with its ``dsn``, broker and secret-like options masked."""
    shown = []
    for config_field in fields(config):
        if not config_field.repr:
            continue
        value = getattr(config, config_field.name)
        if config_field.name in ("dsn", "broker_instance") and value is not None:
            text = repr(describe_broker(value))
        elif isinstance(value, Mapping):
            text = _masked_mapping(value)
        else:
            text = redact(repr(value))
        shown.append(f"{config_field.name}={text}")
    return f"{type(config).__name__}({', '.join(shown)})"


def _masked_mapping(mapping: Mapping[Any, Any]) -> str:
    items = (
        f"{key!r}: {MASK!r}" if SECRET_PARAMETER.search(str(key)) else f"{key!r}: {redact(repr(value))}"
        for key, value in mapping.items()
    )
    return "{" + ", ".join(items) + "}"


def _mask_dsn(dsn: str) -> str:
    if _CONTROL_CHARACTERS.search(dsn):
        return UNPARSEABLE  # a line break in a log line could forge the next one
    scheme, separator, rest = dsn.partition("://")
    if not separator:
        return _mask_loose_text(dsn)
    try:
        urlsplit(dsn)
    except ValueError:
        return UNPARSEABLE
    # The user info ends at the *last* "@": a password may hold an unescaped "@", "/", "?" or "#", which
    # would fool urlsplit (and its netloc properties raise on a multi-host PostgreSQL DSN).
    userinfo, at, tail = rest.rpartition("@")
    shown_userinfo = _mask_userinfo(userinfo) + at if at else ""
    return f"{scheme}://{shown_userinfo}{_mask_query(tail)}"


def _mask_userinfo(userinfo: str) -> str:
    colon = userinfo.find(":")
    special = min((index for index in map(userinfo.find, "/?#") if index != -1), default=-1)
    if colon != -1 and (special == -1 or colon < special):
        return f"{userinfo[:colon]}:{MASK}"
    return MASK if special != -1 else userinfo


def _mask_query(tail: str) -> str:
    location, question, query = tail.partition("?")
    if not question:
        location, hash_mark, fragment = tail.partition("#")
        return location + (f"#{MASK}" if hash_mark and fragment else hash_mark)
    query, hash_mark, fragment = query.partition("#")
    masked = "&".join(_mask_parameter(parameter) for parameter in query.split("&"))
    return f"{location}?{masked}" + (f"#{MASK}" if hash_mark and fragment else hash_mark)


def _mask_parameter(parameter: str) -> str:
    name, equals, _value = parameter.partition("=")
    return f"{name}={MASK}" if equals and SECRET_PARAMETER.search(unquote_plus(name)) else parameter


def _mask_loose_text(text: str) -> str:
    # Not a URL: a libpq keyword/value DSN ("host=db password=x") or a bare "user:password@host".
    masked = _KEYWORD_PAIR.sub(
        lambda pair: (
            f"{pair['name']}{pair['equals']}{MASK}"
            if SECRET_PARAMETER.search(pair["name"])
            else pair.group(0)
        ),
        text,
    )
    userinfo, at, tail = masked.rpartition("@")
    return f"{_mask_userinfo(userinfo)}@{tail}" if at else masked


def _redis_address(connection_kwargs: dict[str, object]) -> str:
    if "path" in connection_kwargs:
        return f"unix://{connection_kwargs['path']}"
    host = connection_kwargs.get("host", "localhost")
    return f"{host}:{connection_kwargs.get('port', 6379)}/{connection_kwargs.get('db', 0)}"


def _sentinel_address(pool: Any) -> str:
    """``redis+sentinel://h1:26379,h2:26379/<service>/<db>`` for a redis-py Sentinel-managed pool."""
    sentinels = getattr(getattr(pool, "sentinel_manager", None), "sentinels", [])
    hosts = ",".join(
        _redis_address(client.connection_pool.connection_kwargs).rsplit("/", 1)[0] for client in sentinels
    )
    return f"redis+sentinel://{hosts}/{pool.service_name}/{pool.connection_kwargs.get('db', 0)}"
