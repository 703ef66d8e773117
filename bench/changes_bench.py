"""200 changes of three asynchronous steps each (VPC, vSwitch, instance, and a security
group between them), with the cloud sandbox taking 2 s to make each resource ready.

Goal (issue 14): the whole run's wall time under 5 % of the serial time, the sum of the
waits (200 x 3 x 2 s): waiting never holds a runner. Also prints the runner's peak memory
(its VmHWM), the runner being one `dingpass runner` process, as on Function Compute one
instance runs one pass at a time. The database is MariaDB at 127.0.0.1:3306 when it
answers, else SQLite.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch_database import database_url
from sqlalchemy import func, select

from backend.apps import store as apps
from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.clock import utc_now
from backend.cloud.plugins import all_plugins
from backend.storage.database import Database
from backend.storage.schema import change_steps, changes
from sandbox.cloud.server import CloudSandbox

CHANGES, ASYNC_STEPS, READY_AFTER = 200, 3, 2.0
GOAL = 0.05
DEADLINE = 300  # seconds: a run that takes longer has failed its goal many times over
AK, SECRET = "bench-ak", "bench-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("dingpass")


def submit_all(database: Database) -> None:
    """Record the changes as the API would, each with its own request id."""
    plugins = all_plugins()
    service = Changes(database, change_types(plugins), plugins, utc_now)
    with database.transaction() as connection:
        app = apps.create(connection, "bench", utc_now())
    for n in range(CHANGES):
        service.submit(
            app.id,
            {
                "type": "ecs.instance",
                "request_id": f"bench-{n}",
                "spec": {
                    "vpc": "new",
                    "zone_id": "cn-hangzhou-h",
                    "image_id": "ubuntu_22_04_x64_20G_alibase_20240130.vhd",
                    "instance_type": "ecs.g7.large",
                    "name": f"bench-{n}",
                },
            },
        )


def count(database: Database, *statuses: str, exclude: bool = False) -> int:
    """How many changes are in (or, with ``exclude``, not in) ``statuses``."""
    status = changes.c.status.notin_(statuses) if exclude else changes.c.status.in_(statuses)
    with database.transaction() as connection:
        return int(
            connection.execute(select(func.count()).select_from(changes).where(status)).scalar()
            or 0
        )


def pending_checks(database: Database) -> int:
    """Readiness checks that found a resource not ready yet: each one a wait, not a block."""
    with database.transaction() as connection:
        return int(connection.execute(select(func.sum(change_steps.c.checks))).scalar() or 0)


def peak_memory(pid: int) -> int:
    """The process's peak resident memory in KiB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    cloud = CloudSandbox(keys={AK: SECRET}, ready_after=READY_AFTER).start()
    with tempfile.TemporaryDirectory() as folder, database_url(Path(folder)) as url:
        database = Database(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CLOUD_ENDPOINT": cloud.url,
            "CLOUD_ACCESS_KEY_ID": AK,
            "CLOUD_ACCESS_KEY_SECRET": SECRET,
            "RUNNER_INTERVAL": "1",
            "CATALOGUE_FILE": str(ROOT / "catalogue.toml"),
        }
        runner = subprocess.Popen(
            [str(SCRIPT), "runner"], env=env, cwd=folder, stdout=subprocess.DEVNULL
        )
        started = time.perf_counter()
        submit_all(database)
        while count(database, "succeeded", "failed", exclude=True):
            if runner.poll() is not None:
                sys.exit(f"the runner exited ({runner.returncode}) before the changes finished")
            if time.perf_counter() - started > DEADLINE:
                runner.kill()
                sys.exit(f"the changes did not finish within {DEADLINE} s")
            time.sleep(0.2)
        wall = time.perf_counter() - started
        checks = pending_checks(database)
        memory = peak_memory(runner.pid)
        runner.send_signal(signal.SIGTERM)
        runner.wait(30)
        failed = count(database, "failed")
        database.dispose()
    cloud.stop()
    serial = CHANGES * ASYNC_STEPS * READY_AFTER
    dialect = url.split(":", 1)[0]
    print(f"changes: {CHANGES} of {ASYNC_STEPS} asynchronous steps, ready after {READY_AFTER:g} s")
    print(f"  database {dialect}, one runner process; {failed} change(s) failed")
    print(f"  readiness checks that found a resource still pending: {checks}")
    print(f"  wall time {wall:7.1f} s   serial (sum of the waits) {serial:7.0f} s")
    print(
        f"  wall / serial {wall / serial:6.1%}   goal under {GOAL:.0%}: "
        f"{'meets' if wall / serial < GOAL and not failed else 'MISSES'} the goal"
    )
    print(f"  runner peak memory (VmHWM) {memory / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
