"""The processes: console commands, the gunicorn server and its gevent worker, the event worker."""
