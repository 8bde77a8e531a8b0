"""What the sync facades share: running a script Call (EVALSHA, reloaded on NOSCRIPT), a Read of plain
commands, or a whole operation of ``bullpy._core.ops`` on a client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis as _redis

from ._core.jobhash import WrongType
from ._core.keys import READ_ONLY_SCRIPTS
from ._core.ops import Batch, Op, Step, run_sync
from ._core.reads import Read
from ._core.scripts import SOURCES, Call
from ._refusals import unavailable_as_error, wrong_type_detail
from .connection import bytes_client, close_client

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
        self._bytes: _redis.Redis | None = None

    def script(self, name: str) -> Any:
        if self.write_refusal is not None and name not in READ_ONLY_SCRIPTS:
            raise ValueError(f"{name}: {self.write_refusal}")
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(SOURCES[name])
        return script

    def run(self, call: Call[T]) -> T:
        with unavailable_as_error(self.client, keys=self.keys):
            try:
                reply = self.script(call.script)(keys=call.keys, args=call.args)
            except UnicodeDecodeError:
                # Bytes that are not UTF-8 in a reply, on a client that decodes strictly: a script that only
                # reads is run again on a client that reads bytes (its parser decodes them as Node does).
                if call.script not in READ_ONLY_SCRIPTS:
                    raise
                reply = self.script(call.script)(keys=call.keys, args=call.args, client=self.bytes_client())
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
        over ``maxmemory``, refuses MULTI even for reads), else a plain pipeline or the lone command.

        A client that decodes replies strictly fails on bytes that are not UTF-8 (another program wrote
        them): the Read is then sent again on a client that reads bytes, which its parser decodes as Node
        does and reports."""
        if not read.commands:
            return read.parse([])
        try:
            replies = self._replies(read, self.client)
        except UnicodeDecodeError:
            replies = self._replies(read, self.bytes_client())
        return read.parse(replies)

    def bytes_client(self) -> _redis.Redis:
        """A client on the same connection settings that reads replies as bytes (made once, when needed)."""
        if self._bytes is None:
            self._bytes = bytes_client(self.client)
        return self._bytes

    def close(self) -> None:
        """Release the bytes client, if one was made (the queue's own client is the queue's to close)."""
        if self._bytes is not None and self._bytes is not self.client:
            close_client(self._bytes)
        self._bytes = None

    def _replies(self, read: Read[Any], client: _redis.Redis) -> list[Any]:
        commands = read.commands
        with unavailable_as_error(client, keys=self.keys):
            if not read.snapshot and len(commands) == 1:
                try:
                    return [client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
                except _redis.ResponseError as exc:
                    return in_place([exc], read)
            if read.snapshot:
                try:
                    replies = self._pipeline(client, read, True)
                except _redis.exceptions.OutOfMemoryError:
                    replies = self._pipeline(client, read, False)
            else:
                replies = self._pipeline(client, read, False)
            return in_place(replies, read)

    @staticmethod
    def _pipeline(client: _redis.Redis, read: Read[Any], transaction: bool) -> list[Any]:
        with client.pipeline(transaction=transaction) as pipe:
            for command in read.commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            return list(pipe.execute(raise_on_error=not read.wrong_type_in_place))

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


def in_place(replies: list[Any], read: Read[Any]) -> list[Any]:
    """The replies of a Read sent with errors in place: a WRONGTYPE becomes a ``WrongType`` reply when the
    Read takes them so; any other error is raised (the caller turns it into bullpy's)."""
    out: list[Any] = []
    for reply in replies:
        if isinstance(reply, _redis.ResponseError):
            detail = wrong_type_detail(reply)
            if not read.wrong_type_in_place or detail is None:
                raise reply
            reply = WrongType(detail)
        out.append(reply)
    return out
