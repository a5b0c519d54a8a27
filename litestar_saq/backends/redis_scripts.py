"""The Lua scripts of our ``RedisQueue``: SAQ's keys and values, fewer round trips per job.

- ``ENQUEUE_MANY`` is SAQ's enqueue script applied to a batch: for each job, only if it is not already
  incomplete and has no abort key, SET its blob, ZADD it to ``incomplete`` with its ``scheduled``
  score, and RPUSH it to ``queued`` when ``scheduled`` is 0. One job is a batch of one, so a single
  enqueue and a bulk one write exactly what SAQ's own enqueue writes.
- ``TAKE`` moves up to N ids from ``queued`` to ``active`` (LMOVE LEFT RIGHT, as SAQ's BLMOVE) and
  returns each id with its blob: a dequeue costs one round trip instead of SAQ's two (BLMOVE, GET).
  It never blocks; when the queue is empty the caller falls back to a blocking BLMOVE.
- ``FINISH`` and ``WRITE`` are SAQ's finish (LREM ``active``, ZREM ``incomplete``, SET/DEL the job,
  PUBLISH its status; atomic, as SAQ's MULTI) and status write (SET, PUBLISH) as one command each,
  sent straight on a connection (see ``redis_connections``): redis-py's pipeline layers were most of
  the worker's CPU. A worker's finish (ARGV[4], ARGV[5]: its fence tokens, see ``liveness``) is
  dropped unless the job is still in ``active`` and its blob still carries a token: a worker cut off
  or frozen past its stats ttl must not finish a job the sweep took back and another worker runs.
  A progress write with tokens (ARGV[3], ARGV[4]) is dropped the same way unless the stored blob
  carries one (it would put the cut-off worker's id back, and its late finish would then count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio.client import Redis
    from redis.asyncio.connection import AbstractConnection

__all__ = ("ENQUEUE_MANY", "FINISH", "TAKE", "WRITE", "LuaScript")

ENQUEUE_MANY = """
local incomplete, queued = KEYS[1], KEYS[2]
local added = {}
for i = 1, #ARGV / 2 do
    local job_id, abort_id = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
    local scheduled = ARGV[2 * i]
    if not redis.call('ZSCORE', incomplete, job_id) and redis.call('EXISTS', abort_id) == 0 then
        redis.call('SET', job_id, ARGV[2 * i - 1])
        redis.call('ZADD', incomplete, scheduled, job_id)
        if scheduled == '0' then redis.call('RPUSH', queued, job_id) end
        added[i] = 1
    else
        added[i] = 0
    end
end
return added
"""

TAKE = """
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
    local job_id = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
    if not job_id then break end
    taken[#taken + 1] = job_id
    taken[#taken + 1] = redis.call('GET', job_id)
end
return taken
"""

FINISH = """
if ARGV[4] ~= '' then
    local stored = redis.call('GET', KEYS[3])
    if not stored or not redis.call('LPOS', KEYS[1], KEYS[3])
        or (not string.find(stored, ARGV[4], 1, true) and not string.find(stored, ARGV[5], 1, true)) then
        return 0
    end
end
redis.call('LREM', KEYS[1], 1, KEYS[3])
redis.call('ZREM', KEYS[2], KEYS[3])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
    redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
elseif ttl == 0 then
    redis.call('SET', KEYS[3], ARGV[1])
else
    redis.call('DEL', KEYS[3])
end
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1
"""

WRITE = """
local token, process_token = ARGV[3] or '', ARGV[4] or ''
if token ~= '' then
    local stored = redis.call('GET', KEYS[1])
    local held = stored and (string.find(stored, token, 1, true)
        or (process_token ~= '' and string.find(stored, process_token, 1, true)))
    if not held then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[2])
return 1
"""


class LuaScript:
    """A Lua script run by its SHA (EVALSHA), loaded into Redis again when Redis forgot it."""

    def __init__(self, redis: Redis, source: str) -> None:
        self._script = redis.register_script(source)

    async def run_on(self, connection: AbstractConnection, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run the script on one held ``connection`` (no retries: the caller owns the connection)."""
        command = _pack(("EVALSHA", self._script.sha, len(keys), *keys, *args))
        await connection.send_packed_command(command, check_health=False)
        try:
            return await connection.read_response()
        except NoScriptError:
            await connection.send_command("SCRIPT", "LOAD", self._script.script)
            await connection.read_response()
            await connection.send_packed_command(command, check_health=False)
            return await connection.read_response()


def _pack(arguments: Sequence[Any]) -> bytes:
    """A RESP command (what redis-py's ``pack_command`` makes, at a third of its cost)."""
    parts = [b"*%d\r\n" % len(arguments)]
    for argument in arguments:
        if isinstance(argument, str):
            data = argument.encode()
        elif isinstance(argument, bytes):
            data = argument
        else:
            data = str(argument).encode()
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)
