"""HTTP entry point: the Segment-compatible tracking API, the admin API, the console."""

from trayecto.web.app import create_app

__all__ = ["create_app"]
