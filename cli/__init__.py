"""The `dingpass` command: the composition root that builds and starts every function.

One module per command group; cli.main puts them together. Only this package may import
every other one (the functions, the sandbox and the core): tests/unit/test_architecture.py
holds the layering.
"""
