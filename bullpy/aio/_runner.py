"""What the asyncio facade shares: running a script Call, a Read or a whole ``bullpy._core.ops`` operation on a
``redis.asyncio`` client (the async twin of ``bullpy._facade.ScriptRunner``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

import redis as _redis
import redis.asyncio as aioredis

from .._core.keys import READ_ONLY_SCRIPTS
from .._core.ops import Batch, Op, Step
from .._core.reads import Read
from .._core.scripts import SOURCES, Call
from ..connection import unavailable_as_error

T = TypeVar("T")


def _errors(client: aioredis.Redis) -> Any:
    """bullpy's errors for a failure of this client (host, port, ACL user, never the password)."""
    # as_bull_error reads only the pool's connection settings, which both kinds of client have.
    return unavailable_as_error(cast(Any, client))


class AsyncRunner:
    """Runs Calls, Reads and operations on one asyncio client; each script is registered once and run by SHA."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, Any] = {}
        #: Set by a Queue that may only be read: every script but the read-only ones raises ValueError(it).
        self.write_refusal: str | None = None

    def script(self, name: str) -> Any:
        if self.write_refusal is not None and name not in READ_ONLY_SCRIPTS:
            raise ValueError(f"{name}: {self.write_refusal}")
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(SOURCES[name])
        return script

    async def run(self, call: Call[T]) -> T:
        with _errors(self.client):
            reply = await self.script(call.script)(keys=call.keys, args=call.args)
        return call.parse(reply)

    async def run_many(self, calls: Sequence[Call[T]], *, transaction: bool = True) -> list[T]:
        """Several Calls in one round trip (MULTI/EXEC when ``transaction``)."""
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
        """A Read in one round trip, as ``ScriptRunner.read`` sends it (MULTI/EXEC, plain over maxmemory)."""
        commands = read.commands
        if not commands:
            return read.parse([])
        with _errors(self.client):
            if not read.snapshot and len(commands) == 1:
                return read.parse([await self.client.execute_command(*commands[0])])  # type: ignore[no-untyped-call]
            if read.snapshot:
                try:
                    replies = await self._pipeline(commands, True)
                except _redis.exceptions.OutOfMemoryError:
                    replies = await self._pipeline(commands, False)
            else:
                replies = await self._pipeline(commands, False)
        return read.parse(replies)

    async def _pipeline(self, commands: Sequence[tuple[Any, ...]], transaction: bool) -> list[Any]:
        async with self.client.pipeline(transaction=transaction) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())

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
