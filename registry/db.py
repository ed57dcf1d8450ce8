"""Database engine, sessions and the column types every model shares."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as UTC everywhere; SQLite has no time zones, so naive values in, aware values out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; mealroll stores UTC-aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINTs and defers BEGIN
        # until the first write; take control of BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads
        # and then writes fails with "database is locked" instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


_row_updates: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}


def write_row(session: Session, model: type["Base"], pk: Any, values: dict[str, Any],
              guard: dict[str, Any] | None = None) -> int:
    """UPDATE one row with a plain statement, not through the unit of work, and give the session's
    object (if it holds one) the written values without making it dirty. `guard` adds equality
    conditions (an optimistic-lock version). Returns the row count.

    Used on the hot path of every workflow action, where flushes and statement construction cost
    most (bench/RESULTS.md); each statement shape is built once.
    """
    table = model.__table__
    guard = guard or {}
    shape = (table.name, tuple(values), tuple(guard))
    statement = _row_updates.get(shape)
    if statement is None:
        key = table.primary_key.columns.values()[0]
        statement = (update(table)
                     .where(key == bindparam("pk_"), *(table.c[name] == bindparam(f"guard_{name}") for name in guard))
                     .values({name: bindparam(f"set_{name}") for name in values}))
        _row_updates[shape] = statement
    params = {"pk_": pk, **{f"guard_{k}": v for k, v in guard.items()}, **{f"set_{k}": v for k, v in values.items()}}
    result = session.connection().execute(statement, params)
    held = session.identity_map.get(identity_key(model, pk))
    if held is not None and result.rowcount:
        for name, value in values.items():
            set_committed_value(held, name, value)
    return result.rowcount


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` primary keys for rows about to be bulk-inserted with explicit ids, so that no
    RETURNING (slow to build for 60k rows) and no lookup afterwards is needed to know them.
    PostgreSQL draws them from the table's sequence; SQLite continues after the largest id,
    safe because its transactions hold the write lock from BEGIN IMMEDIATE (make_engine)."""
    if count <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                                      "FROM generate_series(1, :count)"), {"table": table.name, "count": count}).scalars())
    start = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one() + 1
    return list(range(start, start + count))
