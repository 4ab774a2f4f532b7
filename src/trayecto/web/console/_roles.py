"""Who may open which console page: the same roles as the API behind it (admins always).

| pages | roles |
|---|---|
| customers (search, 360) | admin, agent, store staff |
| review queue | as ``/api/review`` |
| orders, order, stock by location | admin, agent, store staff (as the API's readers) |
| order actions (move a shipment on, reject it, cancel) | admin, store staff (as the API) |

Marketing opens none of them: it works on segments and journeys, not on one person's
profile, orders or a shop's shelves.
"""

from __future__ import annotations

from trayecto import access
from trayecto.web import commerce_api, customers_api, review_api

__all__ = ["CUSTOMER_ROLES", "ORDER_ACT_ROLES", "ORDER_ROLES", "REVIEW_ROLES", "STOCK_ROLES"]

#: Who may open customers: the people who serve them, and admins.
CUSTOMER_ROLES = frozenset({access.Role.ADMIN, *customers_api.SERVICE_ROLES})
#: Who may decide whether two customers are one person: as ``/api/review``.
REVIEW_ROLES = frozenset({access.Role.ADMIN, *review_api.REVIEW_ROLES})
#: Who may read orders, their history and sourcing: as ``GET /api/orders``.
ORDER_ROLES = frozenset({access.Role.ADMIN, *commerce_api.READ_ROLES})
#: Who may move shipments on, reject them and cancel orders: as the API's lifecycle routes.
ORDER_ACT_ROLES = frozenset({access.Role.ADMIN, *commerce_api.ACT_ROLES})
#: Who may read stock by location: as ``GET /api/inventory``.
STOCK_ROLES = frozenset({access.Role.ADMIN, *commerce_api.READ_ROLES})
