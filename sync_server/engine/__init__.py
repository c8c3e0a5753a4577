"""The sync engine: pure merge logic, no I/O, no HTTP.

``state`` holds a record as the server keeps it; ``merge`` applies one change of a
change set to it under the collection's merge policies and says what happened:
applied or rejected, which fields changed (for the edit log) and which conflicts
to log. ``answer`` builds a change set's answer from those outcomes; ``resolve`` turns
a supervisor's decision on a conflict into the change that carries it out.
"""

from .merge import ConflictDraft, Context, Outcome, apply_change
from .state import RecordState

__all__ = ["ConflictDraft", "Context", "Outcome", "RecordState", "apply_change"]
