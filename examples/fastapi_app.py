"""A FastAPI service that queues WhatsApp messages for the Node Bull worker without blocking its event loop."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

from bullpy.aio import Queue

# REDIS_URL (else REDIS_HOST/PORT/PASSWORD/DB), as the Node service reads it.
queue = Queue(os.environ.get("QUEUE_NAME", "message-queue"), prefix=os.environ.get("BULL_PREFIX", "bull"))


class Message(BaseModel):
    number: str
    message: str
    delay: int = 0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await queue.close()


app = FastAPI(lifespan=lifespan)


@app.post("/messages")
async def send(message: Message) -> dict[str, str]:
    job = await queue.add(message.model_dump(), attempts=3, backoff={"type": "exponential", "delay": 2000})
    return {"id": job.id}


@app.post("/campaigns")
async def campaign(messages: list[Message]) -> dict[str, int]:
    jobs = await queue.add_bulk([{"data": m.model_dump(), "opts": {"attempts": 3}} for m in messages])
    return {"queued": len(jobs)}


@app.get("/stats")
async def stats() -> dict[str, int]:
    return await queue.get_job_counts()
