"""Settings from MEALROLL_* environment variables (pydantic-settings)."""

import secrets
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEALROLL_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = None
    broker_url: str | None = None
    # Celery-redbeat keeps beat's lock in Redis; only used with a Redis broker.
    redbeat_url: str | None = None
    files_dir: Path | None = None
    secret_key: str | None = None
    display_timezone: str = "Asia/Shanghai"
    token_max_age_seconds: int = 8 * 3600
    demo_password: str | None = None
    timer_poll_seconds: float = 5.0
    # Notifications (registry/notifications.py). Without an SMTP host, e-mails are kept in the outbox
    # that county_admin reads at /notifications/outbox.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "营养改善计划实名制系统 <noreply@localhost>"
    # A county mail server with a certificate of its own CA; the system's CAs otherwise.
    smtp_ca_file: Path | None = None
    smtp_timeout_seconds: float = 30.0
    # Links in e-mails and webhook messages start with this.
    public_url: str = "http://127.0.0.1:8000"
    # Webhooks are posted only to public addresses: a user's webhook URL must not reach the servers on
    # the county's own network (SSRF). True for a bot gateway inside that network (and for tests).
    webhook_allow_private: bool = False
    # A notification claimed by a worker that died goes out again after this long: longer than an
    # SMTP timeout, so a slow but living sender is not doubled.
    notify_lease_seconds: float = 120.0
    notify_retry_seconds: float = 60.0  # first retry; doubles each time
    notify_max_attempts: int = 5
    # The CJK font of PDF rosters, "path" or "path#N" (face N of a .ttc); unset, registry/rosters.py searches
    # the font the PyPI package paperang-p2-fonts-cjk ships, then Debian's fonts-wqy-*, arphic and noto-cjk.
    pdf_font: str | None = None
    # The seed BPMN files deployed on start; the repository's processes/ folder by default.
    processes_dir: Path = Path(__file__).resolve().parents[1] / "processes"

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> "Settings":
        if self.env == "production" and (not self.secret_key or self.secret_key == DEFAULT_SECRET):
            raise ValueError(
                "MEALROLL_SECRET_KEY must be set to a long random value in production "
                "(生产环境必须设置 MEALROLL_SECRET_KEY)"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'mealroll.db').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def file_store(self) -> Path:
        return (self.files_dir or self.data_dir / "files").resolve()

    def session_secret(self) -> str:
        """The signing key; generated once into the data dir when unset (development only)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@cache
def get_settings() -> Settings:
    return Settings()


@cache
def local_zone() -> ZoneInfo:
    """The county's clock for display and for "this week" (Asia/Shanghai unless MEALROLL_DISPLAY_TIMEZONE)."""
    return ZoneInfo(get_settings().display_timezone)
