"""gunicorn settings for a checkout: ``gunicorn -c gunicorn.conf.py``.

The settings ship inside the package (``gateway/entry/gunicorn_conf.py``); an installed gateway
uses ``gunicorn -c python:gateway.entry.gunicorn_conf`` or ``airflow-gateway serve``.
"""

from gateway.entry.gunicorn_conf import *  # noqa: F403
