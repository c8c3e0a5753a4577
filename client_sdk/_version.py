"""The SDK's version, sent to the server in the ``X-Client`` header."""

__version__ = "0.1.0"
