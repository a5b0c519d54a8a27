"""``describe_broker`` is the one credential-masking function: it hides every password and never raises.

Property tests feed it generated DSNs (passwords in the user info, raw or percent-encoded, and in
password-, token- and secret-like query parameters; one to three hosts), and arbitrary text.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litestar_saq import QueueConfig, SAQConfig, SAQConfigError
from litestar_saq.dsn import UNPARSEABLE, describe_broker, redact

SCHEMES = ("redis", "rediss", "unix", "postgres", "postgresql", "postgresql+asyncpg", "amqp")
SECRET_NAMES = (
    "password",
    "PASSWORD",
    "pass",
    "passwd",
    "sslpassword",
    "token",
    "access_token",
    "auth_token",
    "client_secret",
    "secret",
    "api_key",
    "apikey",
)
PLAIN_NAMES = ("sslmode", "db", "socket_timeout", "target_session_attrs", "application_name")
LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"

# Every generated password starts with "PW", which no generated host, path or parameter name holds, so
# finding it in the output can only be a leak.
passwords = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=3, max_size=20).map(
    lambda text: "PW" + text
)
hosts = st.lists(
    st.tuples(st.text(LOWER + ".-", min_size=1, max_size=12), st.none() | st.integers(1, 65535)).map(
        lambda host: host[0] + (f":{host[1]}" if host[1] else "")
    ),
    min_size=1,
    max_size=3,
).map(",".join)
plain_values = st.text(LOWER + "-_.", max_size=8)


@st.composite
def dsns(draw: st.DrawFn) -> tuple[str, str]:
    """A DSN and the password in it."""
    password = draw(passwords)
    in_userinfo = draw(st.booleans())
    raw = draw(st.booleans())
    user = draw(st.text(LOWER, max_size=8))
    userinfo = f"{user}:{password if raw else quote(password, safe='')}@" if in_userinfo else ""
    if not in_userinfo and draw(st.booleans()):
        userinfo = f"{user}@" if user else ""
    parameters = draw(st.lists(st.tuples(st.sampled_from(PLAIN_NAMES), plain_values), max_size=3))
    if not in_userinfo or draw(st.booleans()):
        position = draw(st.integers(0, len(parameters)))
        parameters.insert(position, (draw(st.sampled_from(SECRET_NAMES)), quote(password, safe="")))
    query = "&".join(f"{name}={value}" for name, value in parameters)
    path = draw(st.sampled_from(["", "/", "/0", "/jobs"]))
    scheme = draw(st.sampled_from(SCHEMES))
    return f"{scheme}://{userinfo}{draw(hosts)}{path}" + (f"?{query}" if query else ""), password


def assert_hidden(shown: str, password: str) -> None:
    for form in {password, quote(password, safe=""), quote(password)}:
        assert form not in shown


@settings(max_examples=400, deadline=None)
@given(dsns())
def test_generated_dsns_never_show_their_password(dsn_and_password: tuple[str, str]) -> None:
    dsn, password = dsn_and_password
    shown = describe_broker(dsn)
    assert_hidden(shown, password)
    assert shown == UNPARSEABLE or shown.startswith(dsn.split("://")[0] + "://")
    # A DSN quoted in a longer message (a driver's error, a repr) is masked as well; an unquoted one
    # ends at the first blank, so a raw blank in its password (no valid URL has one) cuts it short.
    assert_hidden(redact(f"cannot connect to {dsn!r}: refused"), password)
    if not any(character.isspace() for character in dsn):
        assert_hidden(redact(f"cannot connect to {dsn}: refused"), password)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_described_without_raising(text: str) -> None:
    shown = describe_broker(text)
    assert isinstance(shown, str)
    assert "\n" not in shown and "\r" not in shown
    assert isinstance(redact(text), str)


@settings(max_examples=200, deadline=None)
@given(dsns().filter(lambda pair: pair[0].startswith(("redis://", "rediss://", "postgresql://"))))
def test_config_reprs_never_show_the_password(dsn_and_password: tuple[str, str]) -> None:
    dsn, password = dsn_and_password
    queue_config = QueueConfig(name="q", dsn=dsn, broker_options={"password": password})
    assert_hidden(repr(queue_config), password)
    assert_hidden(repr(SAQConfig(queue_configs=[queue_config])), password)
    assert "QueueConfig(name='q', dsn=" in repr(queue_config)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("redis://h/0?token=s3cret&access_token=s3cret", "redis://h/0?token=***&access_token=***"),
        ("redis://h/0?api_key=s3cret&db=1", "redis://h/0?api_key=***&db=1"),
        (
            "postgresql://u:s3cret@h1:5432,h2:5433/db?password=s3cret",
            "postgresql://u:***@h1:5432,h2:5433/db?password=***",
        ),
        ("redis://:s3/cret@h/0", "redis://:***@h/0"),
        ("redis://:s3#cret@h/0", "redis://:***@h/0"),
        ("redis://:s3?cret@h/0", "redis://:***@h/0"),
        ("redis://h/0?pass%77ord=s3cret", "redis://h/0?pass%77ord=***"),
        ("host=db user=app password=s3cret", "host=db user=app password=***"),
        ("app:s3cret@db:5432", "app:***@db:5432"),
        ("redis://:s3cret@h/0\nFAKE LOG LINE", UNPARSEABLE),
    ],
)
def test_examples_of_masking(dsn: str, shown: str) -> None:
    assert describe_broker(dsn) == shown


def test_a_broker_whose_attributes_raise_is_still_described() -> None:
    class Hostile:
        @property
        def connection_pool(self) -> object:
            raise RuntimeError("s3cret")

    assert describe_broker(Hostile()) == "broker_instance"


def test_config_errors_never_show_the_password() -> None:
    messages = []
    for make in (
        lambda: SAQConfig(queue_configs=[{"dsn": "redis://:s3cret@h/0"}]),  # type: ignore[list-item]
        lambda: QueueConfig(name="q", dsn="amqp://u:s3cret@h/?token=s3cret"),
        lambda: QueueConfig(name="q", dsn="kafka://h/?password=s3cret"),
        lambda: QueueConfig(name="q", dsn="redis://:s3cret@h/0", broker_instance=object()),
    ):
        with pytest.raises(SAQConfigError) as excinfo:
            make()
        messages.append(str(excinfo.value))
    assert [message for message in messages if "s3cret" in message] == []
    assert "amqp://u:***@h/?token=***" in messages[1]
