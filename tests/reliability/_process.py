"""The server as a process of its own: ``tests/serving.py`` (shared with the other tests)."""

from __future__ import annotations

from ..serving import ROOT, ServerProcess, cli

__all__ = ["ROOT", "ServerProcess", "cli"]
