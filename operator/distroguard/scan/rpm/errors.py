"""The one error of the rpm database readers."""

from __future__ import annotations


class RpmDatabaseError(ValueError):
    """The database (or one header in it) is not what its format says: truncated, corrupt or hostile."""
