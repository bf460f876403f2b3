"""Entry points: the console command, gunicorn's settings, the container health check."""
