"""Concrete providers.  Each module imports its SDK lazily, so only the extras in use are needed."""
