"""The services: what the server does, behind the HTTP layer and above the stores.

Sync (the push queue and its writer), supervision (reports, conflicts, fleet), identity
and enrolment, record lists and their files. They speak ``schemas`` Structs and raise
``sync_server.errors``; none imports Litestar. See ``docs/ARCHITECTURE.md``.
"""
