"""`gunicorn wsgi:app`: the only app built at import time, configured from the environment."""

from payments_service import create_app

app = create_app()
