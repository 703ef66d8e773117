"""The `dingpass` command groups, one module each; backend.cli puts them together.

The commands are the composition root: they alone in backend/ may import approval/,
frontend/ and sandbox/ to run them (tests/unit/test_architecture.py holds this).
"""
