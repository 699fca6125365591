"""Celery: the app, its settings, and the task that runs one experiment with the trainer."""
