"""The HTTP server: the Starlette app, uvicorn wiring, connection and request guards.

``app.py`` builds the ASGI application (every route), ``resource_metadata.py`` its
RFC 9728 documents, ``middleware.py`` the request guards, ``guards.py`` the connection
guards on uvicorn's protocol classes, and ``serve.py`` runs it all on uvicorn.
"""
