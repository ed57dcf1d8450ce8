"""`mealroll worker --beat` whose `mark_overdue` service task waits for a file before it acts.

Run as `python -m tests.workers.blocking_worker` with MEALROLL_TEST_BLOCK_DIR set: each call of the service
first leaves a `firing-*` file there (the test then knows the worker is inside the timer's unit of work,
uncommitted) and waits for `release`. Everything else is the real worker the CLI starts.
"""

import os
import sys
import time
from pathlib import Path
from typing import Any

from api.cli import app
from registry.actions import SERVICES
from registry.flows import ServiceContext

FOLDER = Path(os.environ["MEALROLL_TEST_BLOCK_DIR"])
real_mark_overdue = SERVICES["mark_overdue"]


def mark_overdue_when_released(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    (FOLDER / f"firing-{os.getpid()}-{time.monotonic_ns()}").touch()
    while not (FOLDER / "release").exists():
        time.sleep(0.05)
    return real_mark_overdue(ctx, params)


if __name__ == "__main__":
    # workflows._services reads SERVICES at each unit of work, and the pool's children are forked from here.
    SERVICES["mark_overdue"] = mark_overdue_when_released
    sys.exit(app(["worker", "--beat"], prog_name="mealroll"))
