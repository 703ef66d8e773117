"""The runner function's entry: the app, built once from the environment (gunicorn imports it)."""

import os
from pathlib import Path

from backend import defaults, request_log
from backend.config import Config
from runner.app import create_app

request_log.configure()
app = create_app(Config.from_env(os.environ, Path(defaults.DOTENV_FILE)))
