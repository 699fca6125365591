"""Plain ML: spec -> data -> model -> fit -> evaluate -> artifacts. Knows nothing of api/worker."""

import os

# TensorFlow's C++ start-up chatter hides what matters in worker and CLI logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
