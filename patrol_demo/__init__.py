"""The demo: three handhelds and a supervisor against a real server (``patrol-sync demo``).

A client of the server, kept out of the ``sync_server`` package so that the server never
imports its own SDK. ``patrol-sync demo`` imports it when the command runs.
"""

from .demo import Figures, run_demo

__all__ = ["Figures", "run_demo"]
