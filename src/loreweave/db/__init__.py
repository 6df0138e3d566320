"""Storage: the SQLAlchemy schema, engines, migrations and the unit of work."""

from loreweave.db.engine import Database
from loreweave.db.uow import UnitOfWork

__all__ = ["Database", "UnitOfWork"]
