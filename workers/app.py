"""The Celery app: filesystem broker under ./var/broker by default, Redis in production."""

from datetime import timedelta

from celery import Celery

from registry.settings import Settings, get_settings


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("mealroll", include=["workers.tasks"])
    conf: dict[str, object] = {
        "broker_url": settings.broker,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "timezone": "UTC",
        "enable_utc": True,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # Beat's longest sleep, and how often a waiting redbeat retries its lock: Celery's default of
        # 300 s left a worker restarted after a crash without beat for 5 minutes.
        "beat_max_loop_interval": settings.timer_poll_seconds,
        # The database holds every due time; beat only says "go look now" (DESIGN.md, runtime defaults).
        "beat_schedule": {
            "fire-due-timers": {
                "task": "workflow.fire_due_timers",
                "schedule": timedelta(seconds=settings.timer_poll_seconds),
            },
            # Uploaded student lists wait in import_batch (status queued) until a worker takes them.
            "check-queued-imports": {
                "task": "imports.check_queued",
                "schedule": timedelta(seconds=settings.timer_poll_seconds),
            },
            # task_reminder rows due now: reminders, overdue notices, escalation, daily digests.
            "scan-reminders": {
                "task": "reminders.scan",
                "schedule": timedelta(seconds=settings.timer_poll_seconds),
            },
            # Notifications still to go out: retries whose pause is over, a sender that died, a lost message.
            "flush-notifications": {
                "task": "notify.flush",
                "schedule": timedelta(seconds=settings.timer_poll_seconds),
            },
            # Art. 13, 16, 17: each beneficiary school's annual_cycle for the school year, started once
            # (idempotent); it waits on its timer start event for the county's start day.
            "arm-annual-cycle": {
                "task": "annual_cycle.arm",
                "schedule": timedelta(hours=1),
            },
            # Art. 24: an approved data release's file is deleted once it expired or was used up.
            "purge-released-files": {
                "task": "data_releases.purge",
                "schedule": timedelta(hours=1),
            },
        },
    }
    if settings.broker.startswith("filesystem"):
        folder = settings.broker_dir
        for sub in ("out", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            # kombu would otherwise create ./control in whatever folder the worker started in.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
        conf["beat_schedule_filename"] = str(settings.data_dir.resolve() / "celerybeat-schedule")
    elif settings.broker.startswith("redis"):
        # celery-redbeat keeps beat's lock in Redis so that `-B` on every worker still fires once.
        conf["beat_scheduler"] = "redbeat.RedBeatScheduler"
        conf["redbeat_redis_url"] = settings.redbeat_url or settings.broker
        conf["redbeat_lock_timeout"] = max(int(settings.timer_poll_seconds * 5), 30)
    app.conf.update(conf)
    return app


celery_app = make_celery()
