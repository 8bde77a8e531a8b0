"""What the sync facades share: running a script Call (EVALSHA, reloaded on NOSCRIPT), a Read of plain
commands, or a whole operation of ``bullpy._core.ops`` on a client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis as _redis

from ._core.keys import READ_ONLY_SCRIPTS
from ._core.ops import Batch, Op, Step, run_sync
from ._core.reads import Read
from ._core.scripts import SOURCES, Call
from .connection import unavailable_as_error

if TYPE_CHECKING:
    from ._core.keys import QueueKeys

T = TypeVar("T")


class ScriptRunner:
    """Runs Calls on one client; each script is registered once and run by SHA."""

    def __init__(self, client: _redis.Redis, keys: QueueKeys | None = None) -> None:
        self.client = client
        #: The queue's keys: a WRONGTYPE then becomes a WrongKeyType naming the damaged one.
        self.keys = keys
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

    def run(self, call: Call[T]) -> T:
        with unavailable_as_error(self.client, keys=self.keys):
            reply = self.script(call.script)(keys=call.keys, args=call.args)
        return call.parse(reply)

    def run_many(self, calls: Sequence[Call[T]], *, transaction: bool = True) -> list[T]:
        """Several Calls in one round trip (MULTI/EXEC when ``transaction``)."""
        if not calls:
            return []
        with unavailable_as_error(self.client, keys=self.keys):
            with self.client.pipeline(transaction=transaction) as pipe:
                for call in calls:
                    self.script(call.script)(keys=call.keys, args=call.args, client=pipe)
                replies = pipe.execute()
        return [call.parse(reply) for call, reply in zip(calls, replies)]

    def run_many_raw(self, calls: Sequence[Call[Any]]) -> list[Any]:
        """Several Calls in one non-transactional round trip; each reply unparsed, errors in place."""
        if len(calls) == 1:  # a pipeline costs more than a plain call for one command
            try:
                with unavailable_as_error(self.client, keys=self.keys):
                    return [self.script(calls[0].script)(keys=calls[0].keys, args=calls[0].args)]
            except _redis.ResponseError as exc:
                return [exc]
        with unavailable_as_error(self.client, keys=self.keys):
            with self.client.pipeline(transaction=False) as pipe:
                for call in calls:
                    self.script(call.script)(keys=call.keys, args=call.args, client=pipe)
                return list(pipe.execute(raise_on_error=False))

    def read(self, read: Read[T]) -> T:
        """Send a Read's commands in one round trip: MULTI/EXEC for a snapshot (a plain pipeline when Redis,
        over ``maxmemory``, refuses MULTI even for reads), else a plain pipeline or the lone command."""
        commands = read.commands
        if not commands:
            return read.parse([])
        with unavailable_as_error(self.client, keys=self.keys):
            if not read.snapshot and len(commands) == 1:
                return read.parse([self.client.execute_command(*commands[0])])  # type: ignore[no-untyped-call]
            if read.snapshot:
                try:
                    replies = self._pipeline(commands, True)
                except _redis.exceptions.OutOfMemoryError:
                    replies = self._pipeline(commands, False)
            else:
                replies = self._pipeline(commands, False)
        return read.parse(replies)

    def _pipeline(self, commands: Sequence[tuple[Any, ...]], transaction: bool) -> list[Any]:
        with self.client.pipeline(transaction=transaction) as pipe:
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return list(pipe.execute())

    def step(self, step: Step) -> Any:
        """Perform one step of an operation (a Call, a Read or a Batch) and return its reply."""
        if isinstance(step, Read):
            return self.read(step)
        if isinstance(step, Batch):
            return self.run_many_raw(step.calls) if step.raw else self.run_many(step.calls,
                                                                                 transaction=step.transaction)
        return self.run(step)

    def drive(self, op: Op[T]) -> T:
        """Run an operation of ``bullpy._core.ops`` to its end."""
        return run_sync(op, self.step)
