"""Who may open which console page: the same roles as the API behind it (admins always)."""

from __future__ import annotations

from trayecto import access
from trayecto.web import customers_api, review_api

__all__ = ["CUSTOMER_ROLES", "REVIEW_ROLES"]

#: Who may open customers: the people who serve them, and admins.
CUSTOMER_ROLES = frozenset({access.Role.ADMIN, *customers_api.SERVICE_ROLES})
#: Who may decide whether two customers are one person: as ``/api/review``.
REVIEW_ROLES = frozenset({access.Role.ADMIN, *review_api.REVIEW_ROLES})
