"""Queueing an agreed change's steps as jobs, in the transaction that lets it run.

Apart from backend.changes.service, which plans changes with the resource plugins: the
approval function queues the steps of a change agreed in DingTalk and needs none of that.
"""

from datetime import datetime

from sqlalchemy import Connection

from backend.changes.names import STEP_KIND
from backend.jobs import queue
from backend.storage import changes as store
from backend.subjects import Subject


def queue_steps(connection: Connection, change_id: int, now: datetime) -> None:
    """Queue each step's job, depending on the jobs of the steps it needs: the change runs."""
    job_ids: dict[str, int] = {}
    for step in store.steps_of(connection, change_id):
        job_id = queue.enqueue(
            connection,
            STEP_KIND,
            Subject.change(change_id),
            now,
            part=step.name,
            payload={"step": step.name},
            depends_on=[job_ids[name] for name in step.needs],
        )
        if job_id is None:
            raise RuntimeError(f"change {change_id} step {step.name}: its job was recorded already")
        job_ids[step.name] = job_id
        store.set_step_job(connection, step.id, job_id)
