"""The frontend function's entry: the app, built once from the environment (gunicorn imports it).

Its log lines take the one format, with the request's id, from the gunicorn configuration
(backend/gunicorn_conf.py) that serves every function.
"""

import os

from frontend.app import create_app
from frontend.config import FrontendConfig

app = create_app(FrontendConfig.from_env(os.environ))
