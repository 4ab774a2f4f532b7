"""The one command-line interface: ``trayecto``."""
