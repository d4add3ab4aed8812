"""The declarative base every room's tables hang on, so one Alembic env sees them all."""
from typing import cast

from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table_of(model: type[Base]) -> Table:
    """A model's Table. DeclarativeBase types ``__table__`` as any FromClause, which the type
    check refuses to insert into, update or delete from; every model here has a Table."""
    return cast(Table, model.__table__)


# Modules that declare tables on Base; Alembic's env and create_all import them all.
TABLE_MODULES = (
    "core_client.tables",
    "ivr.tables",
    "sms.tables",
    "prompts.tables",
    "console.tables",
    "storage.cluster",
    "sms.door.tables",
)


def load_all_tables() -> MetaData:
    import importlib

    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return Base.metadata
