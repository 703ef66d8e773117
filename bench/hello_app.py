"""The cold-start baseline: a bare Flask app, served by bench/cold_start.py with bootstrap's
own gunicorn command line in place of a function's app."""

from flask import Flask

app = Flask("hello")


@app.get("/")
def hello() -> str:
    """The one answer: what a function's first good answer is measured against."""
    return "hello"
