"""The HTTP layer: controllers, authentication, limits, observability, OpenAPI and docs.

It turns requests into calls on the services (``sync_server/services/``) and their
answers or errors into responses; it decides nothing about records itself. See
``docs/ARCHITECTURE.md`` for what each layer may import.
"""
