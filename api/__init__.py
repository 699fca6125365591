"""The HTTP API. Nothing here imports TensorFlow at import time."""
