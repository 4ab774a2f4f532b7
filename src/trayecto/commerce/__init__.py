"""Commerce: catalogue, locations, stock, orders with sourcing, fulfilment and returns.

Public face of the domain; other packages import only from here.
"""

from trayecto.commerce import _tables as _tables  # registers the tables on db.metadata
