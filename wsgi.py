"""`gunicorn wsgi:app`: the only app built at import time, configured from the environment."""

import gc

from payments_service import create_app
from payments_service.wiring import Runtime

# gunicorn's worker class (-k gevent or sync) decides how requests run; this is the one place that asks.
app = create_app(runtime=Runtime.of_this_process())
gc.freeze()  # the app lives as long as the worker: keep it out of every full collection (see server.py)
