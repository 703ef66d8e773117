"""100,000 activation codes in one batch, beside the bare insert of the same rows; and
redemptions per second with 8 concurrent clients.

Goal (issue 16): a batch of 100,000 works on MariaDB in bounded memory and time. Printed:
the codes made per second (made, hashed, stored, handed out) against the bare insert rate of
100,000 rows of the same shape through SQLAlchemy executemany in the same chunks, measured
in the same run, taking turns (fastest of ROUNDS each); the peak memory (VmHWM) of the
command `dingpass codes generate` for 1 code and for 100,000; and redemptions per second by
8 client processes (and, for scale, by one), each redeeming codes of its own as the QR page
does (backend.codes.redeem). The database is MariaDB at 127.0.0.1:3306 when it answers,
else SQLite.

`python bench/codes_bench.py --client` is one redeeming client: it reads its setup as one
JSON line, says "ready", waits for "go", redeems, and prints its counts as JSON.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from scratch_database import database_url
from sqlalchemy import insert

from backend.catalogue import load_catalogue
from backend.clock import utc_now
from backend.codes import batches
from backend.codes.batches import CHUNK, BatchTerms
from backend.codes.redeem import RedeemLimits, Redemptions
from backend.exceptions import DingpassError
from backend.storage import codes as store
from backend.storage.database import Database
from backend.storage.schema import activation_codes

COUNT = 100_000
ROUNDS = 2
CLIENTS = 8
REDEEM_SECONDS = 5.0
CODES_PER_CLIENT = 3000
"""More than one client redeems in REDEEM_SECONDS: each one runs for the whole time."""
ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "catalogue.toml"
FORM = {
    "product": "acme-erp",
    "feature_code": "9F2C-41AB-77D0-E5C3",
    "company": "杭州示例网络科技有限公司",
    "contact": "张三",
    "email": "zhang@example.com",
    "phone": "+86 138 0000 0000",
    "language": "zh",
}
COMMAND = (
    "import os, sys; from backend.config import Config; from cli import codes; "
    "from cli.context import script_info\n"
    "try:\n"
    "    codes.group.main(sys.argv[1:], obj=script_info(Config.from_env(os.environ)))\n"
    "finally:\n"
    "    sys.stderr.write(open('/proc/self/status').read())\n"
)
"""`dingpass codes ARGS` (whether or not cli/main.py lists the group yet), then its memory
figures on standard error: a child's rusage would count the bench's own memory, which the
kernel carries into a child across exec."""


def terms(count: int) -> BatchTerms:
    now = utc_now()
    return BatchTerms("acme-erp", count, now - timedelta(minutes=1), now + timedelta(days=30))


def generation_seconds(database: Database, key: bytes) -> float:
    """Seconds to generate a batch of COUNT codes, handed to a sink that drops them."""
    catalogue = load_catalogue(CATALOGUE)
    started = time.perf_counter()
    batches.generate(database, key, catalogue, terms(COUNT), utc_now(), lambda chunk: None)
    return time.perf_counter() - started


def bare_insert_seconds(database: Database) -> float:
    """Seconds to insert COUNT ready-made hash rows, in chunks, in one transaction."""
    hashes = [secrets.token_hex(32) for _ in range(COUNT)]
    started = time.perf_counter()
    with database.transaction() as connection:
        batch = store.insert_batch(connection, **_bare_batch())
        for start in range(0, COUNT, CHUNK):
            rows = [{"batch_id": batch.id, "code_hash": h} for h in hashes[start : start + CHUNK]]
            connection.execute(insert(activation_codes), rows)
    return time.perf_counter() - started


def _bare_batch() -> dict[str, object]:
    batch = terms(COUNT)
    return {
        "product": batch.product,
        "quantity": batch.quantity,
        "validity": batch.validity,
        "valid_from": batch.valid_from,
        "valid_until": batch.valid_until,
        "size": COUNT,
        "created_at": utc_now(),
    }


def command_peak_kib(url: str, key: str, count: int, folder: Path) -> tuple[int, float]:
    """Peak resident memory (KiB) and seconds of `dingpass codes generate --count COUNT`."""
    out = folder / f"codes-{count}-{secrets.token_hex(2)}.csv"
    args = ["generate", "--product", "acme-erp", "--count", str(count), "--out", str(out)]
    window = ["--valid-from", "2026-01-01", "--valid-until", "2099-01-01"]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CODE_HASH_KEY": key,
        "CATALOGUE_FILE": str(CATALOGUE),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COMMAND, *args, *window],
        env=env,
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    out.unlink()
    (peak,) = (line.split()[1] for line in done.stderr.splitlines() if line.startswith("VmHWM:"))
    return int(peak), seconds


def redemption_rate(url: str, key: str, database: Database, count: int) -> tuple[int, int, float]:
    """Redeemed, refused, and the seconds ``count`` processes took, each with codes of its own."""
    made: list[str] = []
    catalogue = load_catalogue(CATALOGUE)
    batches.generate(
        database, key.encode(), catalogue, terms(count * CODES_PER_CLIENT), utc_now(), made.extend
    )
    clients = [_client(url, key, made[n::count], n) for n in range(count)]
    started = time.perf_counter()
    for client in clients:
        client.stdin.write("go\n")
        client.stdin.flush()
    results = [json.loads(client.stdout.readline()) for client in clients]
    seconds = time.perf_counter() - started
    for client in clients:
        client.wait(30)
    redeemed = sum(r["redeemed"] for r in results)
    return redeemed, sum(r["refused"] for r in results), seconds


def _client(url: str, key: str, codes: list[str], number: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--client"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    setup = {"url": url, "key": key, "codes": codes, "number": number}
    process.stdin.write(json.dumps(setup) + "\n")
    process.stdin.flush()
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("a redeeming client did not start")
    return process


def client() -> None:
    """One client: redeem its own codes, one after another, for REDEEM_SECONDS.

    Each redemption is another customer's (its own machine's feature code), all from the
    client's one address: as many shops' customers redeeming at once, not one guessing.
    """
    setup = json.loads(sys.stdin.readline())
    database = Database(setup["url"])
    key = setup["key"].encode()
    redemptions = Redemptions(
        database, load_catalogue(CATALOGUE), lambda: key, RedeemLimits(), utc_now, "http://bench"
    )
    print("ready", flush=True)
    sys.stdin.readline()  # go
    redeemed = refused = 0
    deadline = time.perf_counter() + REDEEM_SECONDS
    address = f"198.51.100.{setup['number'] + 1}"
    for n, code in enumerate(setup["codes"]):
        if time.perf_counter() >= deadline:
            break
        form = {**FORM, "feature_code": f"9F2C-{setup['number']:04X}-{n:04X}-E5C3"}
        try:
            redemptions.redeem(form, code, address, address)
            redeemed += 1
        except DingpassError:
            refused += 1
    print(json.dumps({"redeemed": redeemed, "refused": refused}), flush=True)
    database.dispose()


def main() -> None:
    key = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as name, database_url(Path(name)) as url:
        folder = Path(name)
        database = Database(url)
        bare, made = float("inf"), float("inf")
        for _ in range(ROUNDS):  # taking turns: both sides of the ratio see the same machine
            bare = min(bare, bare_insert_seconds(database))
            made = min(made, generation_seconds(database, key.encode()))
        small, _ = command_peak_kib(url, key, 1, folder)
        large, command_seconds = command_peak_kib(url, key, COUNT, folder)
        redemptions = {n: redemption_rate(url, key, database, n) for n in (1, CLIENTS)}
        database.dispose()
    print(f"codes_bench: {COUNT:,} codes in one batch on {url.split(':', 1)[0]}")
    print(f"  generate     {COUNT / made:>10,.0f} codes/s  ({made:.1f} s, fastest of {ROUNDS})")
    print(f"  bare insert  {COUNT / bare:>10,.0f} rows/s   ({bare:.1f} s, the same rows, no codes)")
    print(f"  generate / bare insert: {bare / made:.1%}")
    print(
        f"  `dingpass codes generate` peak memory (VmHWM): {small / 1024:.1f} MiB for 1 code, "
        f"{large / 1024:.1f} MiB for {COUNT:,} ({command_seconds:.1f} s with the CSV file)"
    )
    for clients, (redeemed, refused, seconds) in redemptions.items():
        print(
            f"  redeem       {redeemed / seconds:>10,.0f} /s       ({clients} client process(es), "
            f"{redeemed} redeemed in {seconds:.1f} s, {refused} refused)"
        )


if __name__ == "__main__":
    client() if sys.argv[1:] == ["--client"] else main()
