"""A runner process whose one job hangs, for a test to kill with SIGKILL mid-job."""

import sys
import time
from datetime import datetime, timezone

from backend.jobs.model import Done
from backend.jobs.registry import JobKind, Registry
from backend.jobs.runner import Runner
from backend.storage.database import Database


def hang(job):
    print(f"running {job.id}", flush=True)
    time.sleep(600)
    return Done()


if __name__ == "__main__":
    kinds: Registry[None] = Registry()
    kinds.add(JobKind("slow", lambda services, job: hang(job)))
    Runner(
        Database(sys.argv[1]), kinds, None, lambda: datetime.now(timezone.utc), name="doomed"
    ).run_one()
