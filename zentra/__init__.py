"""The project's core: settings.py (from the environment; env.py loads a developer's .env),
urls.py, celery.py (the Celery app and its beat schedule), gunicorn_conf.py (the web server's
settings for make serve and production), wsgi.py, tasks.py (idempotency keys purged), ids.py,
errors.py, shapes.py, formats/, and api/, the HTTP edge."""

from .celery import app as celery_app

__all__ = ("celery_app",)
