"""trayecto: one customer across every channel."""

__version__ = "0.1.0"
__all__ = ["__version__"]
