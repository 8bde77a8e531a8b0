"""What the asyncio facade shares: running a script Call, a Read or a whole ``bullpy._core.ops`` operation on a
``redis.asyncio`` client (the async twin of ``bullpy._facade.ScriptRunner``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis as _redis
import redis.asyncio as aioredis

from .._core.keys import KEY_TYPES, READ_ONLY_SCRIPTS
from .._core.ops import Batch, Op, Step
from .._core.reads import Read
from .._core.scripts import SOURCES, Call
from .._facade import in_place
from .._refusals import (
    first_damaged_key,
    unavailable_as_error,
    wrong_key_type_error,
    wrong_type_detail,
)
from ..connection import bytes_pool_kwargs

if TYPE_CHECKING:
    from .._core.keys import QueueKeys

T = TypeVar("T")


def _errors(client: aioredis.Redis) -> Any:
    """bullpy's errors for a failure of this client (host, port, ACL user, never the password)."""
    # as_bull_error reads only the pool's connection settings, which both kinds of client have.
    return unavailable_as_error(cast(Any, client))


class AsyncRunner:
    """Runs Calls, Reads and operations on one asyncio client; each script is registered once and run by SHA."""

    def __init__(self, client: aioredis.Redis, keys: QueueKeys | None = None) -> None:
        self.client = client
        #: The queue's keys: a WRONGTYPE then becomes a WrongKeyType naming the damaged one.
        self.keys = keys
        self._scripts: dict[str, Any] = {}
        #: Set by a Queue that may only be read: every script but the read-only ones raises ValueError(it).
        self.write_refusal: str | None = None
        self._bytes: aioredis.Redis | None = None

    def script(self, name: str) -> Any:
        if self.write_refusal is not None and name not in READ_ONLY_SCRIPTS:
            raise ValueError(f"{name}: {self.write_refusal}")
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(SOURCES[name])
        return script

    async def run(self, call: Call[T]) -> T:
        async with self._named():
            return await self._run(call)

    async def _run(self, call: Call[T]) -> T:
        with _errors(self.client):
            try:
                reply = await self.script(call.script)(keys=call.keys, args=call.args)
            except UnicodeDecodeError:  # as ScriptRunner.run: a read-only script is read again as bytes
                if call.script not in READ_ONLY_SCRIPTS:
                    raise
                reply = await self.script(call.script)(keys=call.keys, args=call.args, client=self._bytes_client())
        return call.parse(reply)

    async def run_many(self, calls: Sequence[Call[T]], *, transaction: bool = True) -> list[T]:
        """Several Calls in one round trip (MULTI/EXEC when ``transaction``)."""
        async with self._named():
            return await self._run_many(calls, transaction)

    async def _run_many(self, calls: Sequence[Call[T]], transaction: bool) -> list[T]:
        if not calls:
            return []
        with _errors(self.client):
            async with self.client.pipeline(transaction=transaction) as pipe:
                for call in calls:
                    await self.script(call.script)(keys=call.keys, args=call.args, client=pipe)
                replies = await pipe.execute()
        return [call.parse(reply) for call, reply in zip(calls, replies)]

    async def run_many_raw(self, calls: Sequence[Call[Any]]) -> list[Any]:
        """Several Calls in one non-transactional round trip; each reply unparsed, errors in place."""
        if len(calls) == 1:
            try:
                with _errors(self.client):
                    return [await self.script(calls[0].script)(keys=calls[0].keys, args=calls[0].args)]
            except _redis.ResponseError as exc:
                return [exc]
        with _errors(self.client):
            async with self.client.pipeline(transaction=False) as pipe:
                for call in calls:
                    await self.script(call.script)(keys=call.keys, args=call.args, client=pipe)
                return list(await pipe.execute(raise_on_error=False))

    async def read(self, read: Read[T]) -> T:
        """A Read in one round trip, as ``ScriptRunner.read`` sends it (MULTI/EXEC, plain over maxmemory; again
        as bytes when a strictly decoding client meets bytes that are not UTF-8)."""
        if not read.commands:
            return read.parse([])
        async with self._named():
            try:
                replies = await self._replies(read, self.client)
            except UnicodeDecodeError:
                replies = await self._replies(read, self._bytes_client())
        return read.parse(replies)

    def _bytes_client(self) -> aioredis.Redis:
        if self._bytes is None:
            kwargs = bytes_pool_kwargs(self.client.connection_pool)
            if kwargs is None:
                return self.client
            self._bytes = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**kwargs))
        return self._bytes

    async def aclose(self) -> None:
        """Release the bytes client, if one was made (the queue's own client is the queue's to close)."""
        if self._bytes is not None:
            await self._bytes.aclose()
            await self._bytes.connection_pool.disconnect()
        self._bytes = None

    async def _replies(self, read: Read[Any], client: aioredis.Redis) -> list[Any]:
        commands = read.commands
        with _errors(client):
            if not read.snapshot and len(commands) == 1:
                try:
                    return [await client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
                except _redis.ResponseError as exc:
                    return in_place([exc], read)
            if read.snapshot:
                try:
                    replies = await self._pipeline(client, read, True)
                except _redis.exceptions.OutOfMemoryError:
                    replies = await self._pipeline(client, read, False)
            else:
                replies = await self._pipeline(client, read, False)
            return in_place(replies, read)

    @staticmethod
    async def _pipeline(client: aioredis.Redis, read: Read[Any], transaction: bool) -> list[Any]:
        async with client.pipeline(transaction=transaction) as pipe:
            for command in read.commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=not read.wrong_type_in_place))

    @asynccontextmanager
    async def _named(self) -> AsyncIterator[None]:
        """A WRONGTYPE on the queue's keys becomes a WrongKeyType naming the damaged key, as in the sync facade."""
        try:
            yield
        except _redis.ResponseError as exc:
            if self.keys is None or wrong_type_detail(exc) is None:
                raise
            raise await self._wrong_key_type() from exc

    async def _wrong_key_type(self) -> Exception:
        keys = cast("QueueKeys", self.keys)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for suffix in KEY_TYPES:
                    pipe.type(keys(suffix))
                damaged = first_damaged_key(keys, await pipe.execute())
        except _redis.RedisError:  # TYPE refused or the server gone: say what is known
            damaged = None
        return wrong_key_type_error(keys, damaged)

    async def step(self, step: Step) -> Any:
        if isinstance(step, Read):
            return await self.read(step)
        if isinstance(step, Batch):
            if step.raw:
                return await self.run_many_raw(step.calls)
            return await self.run_many(step.calls, transaction=step.transaction)
        return await self.run(step)

    async def drive(self, op: Op[T]) -> T:
        """Run an operation of ``bullpy._core.ops`` to its end: the same steps the sync facade sends."""
        try:
            current = next(op)
            while True:
                try:
                    reply = await self.step(current)
                except Exception as exc:
                    current = op.throw(exc)
                else:
                    current = op.send(reply)
        except StopIteration as stop:
            return cast(T, stop.value)
