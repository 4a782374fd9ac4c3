"""`gunicorn wsgi:app`: the only app built at import time, configured from the environment."""

import gc

from payments_service import create_app

app = create_app()
gc.freeze()  # the app lives as long as the worker: keep it out of every full collection (see server.py)
