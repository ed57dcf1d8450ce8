"""Beat exactly once with Redis: every worker runs `mealroll worker --beat`, and celery-redbeat's lock in
Redis lets one of them send the schedule; when that one dies, another takes over within the lock timeout."""

import time
from pathlib import Path

import pytest
import redis

from tests.workers.conftest import REDIS_URL, kill_group, wait_until

# workers/app.py: redbeat_lock_timeout = max(5 × poll, 30) s; the tests poll every 0.5 s.
LOCK_TIMEOUT = 30
LOCK_KEY = "redbeat::lock"


def sends(log: Path) -> int:
    return log.read_text(errors="replace").count("Scheduler: Sending due task")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="real-server test: needs Redis "
                                          "(set MEALROLL_TEST_REDIS_URL=redis://127.0.0.1:6379/11)")
@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_of_two_workers_with_beat_one_sends_the_schedule_and_the_other_takes_over(start_worker, broker_url) -> None:  # type: ignore[no-untyped-def]
    first, first_log = start_worker()
    second, second_log = start_worker()
    wait_until(lambda: all("ready" in log.read_text(errors="replace") for log in (first_log, second_log)),
               what="both workers ready", log=second_log)
    wait_until(lambda: sends(first_log) + sends(second_log) >= 12, what="beat sent the schedule a few times",
               log=first_log)

    senders = [log for log in (first_log, second_log) if sends(log)]
    assert len(senders) == 1, "both workers' beats sent the schedule"
    holder, holder_log, waiter, waiter_log = ((first, first_log, second, second_log) if senders[0] == first_log
                                              else (second, second_log, first, first_log))
    assert "beat: Acquired lock" in holder_log.read_text(errors="replace")
    assert "beat: Acquired lock" not in waiter_log.read_text(errors="replace")
    with redis.Redis.from_url(broker_url) as client:
        assert client.exists(LOCK_KEY) and 0 < client.ttl(LOCK_KEY) <= LOCK_TIMEOUT

    kill_group(holder)  # no chance to release the lock: it has to run out
    killed = time.monotonic()
    wait_until(lambda: sends(waiter_log) > 0, what="the other worker's beat took over", log=waiter_log,
               timeout=LOCK_TIMEOUT + 15)
    took = time.monotonic() - killed
    print(f"beat taken over {took:.1f} s after the lock holder was killed (lock timeout {LOCK_TIMEOUT} s)")
    # The lock was extended at most one poll before the kill; the waiter asks again every poll (0.5 s).
    assert took <= LOCK_TIMEOUT + 2, took
    assert "beat: Acquired lock" in waiter_log.read_text(errors="replace")
    assert waiter.poll() is None
