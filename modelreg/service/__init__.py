"""The shared registry service (``modelreg serve``): FastAPI on uvicorn over the registry.

Imported only by ``modelreg serve`` and by code that runs the service; the CLI's light commands never import
this package (FastAPI is in the ``service`` extra).
"""
