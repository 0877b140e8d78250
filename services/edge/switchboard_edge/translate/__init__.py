"""Format translators: a client speaking one API format served by a platform speaking another.

One sans-I/O module per direction, `<client>_to_<upstream>.py`, each a `Translator` (`base.py`), all found
through one table (`registry.py`). No module here imports aiohttp, Starlette or gRPC.
"""
