"""Bytes on the wire, both ways: body formats and lenient push decoding (``codec``),
and the shape of push and pull answers as each client asked for them (``answers``).

Pure functions over bytes and ``schemas`` Structs: no Litestar, no store, so the HTTP
layer, the services and the engine can all use them.
"""
