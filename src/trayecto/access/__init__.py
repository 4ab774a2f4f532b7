"""Access: who may send and who may read. Sources (with write keys) and API tokens (with roles).

Public face of the domain; other packages import only from here.
"""

from trayecto.access._keys import (
    ApiToken,
    Channel,
    Issued,
    Role,
    Source,
    authenticate_token,
    authenticate_write_key,
    create_source,
    create_token,
    get_source,
    list_sources,
    list_tokens,
    revoke_source,
    revoke_token,
)

__all__ = [
    "ApiToken",
    "Channel",
    "Issued",
    "Role",
    "Source",
    "authenticate_token",
    "authenticate_write_key",
    "create_source",
    "create_token",
    "get_source",
    "list_sources",
    "list_tokens",
    "revoke_source",
    "revoke_token",
]
