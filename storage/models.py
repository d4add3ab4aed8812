"""The declarative base every room's tables hang on, so one Alembic env sees them all."""
from sqlalchemy import MetaData
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
