"""``python -m trayecto`` is the ``trayecto`` command."""

from trayecto.cli.main import main

main()
