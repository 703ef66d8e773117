"""The frontend function's entry: the app, built once from the environment (gunicorn imports it)."""

import logging
import os

from frontend.app import create_app
from frontend.config import FrontendConfig

# FC's request id (x-fc-request-id) goes onto each access line gunicorn writes; nothing else logs.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
app = create_app(FrontendConfig.from_env(os.environ))
