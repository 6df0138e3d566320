"""The entry points: the command line, the terminal chat, the worker processes and the demo.
Each builds its process through :mod:`loreweave.bootstrap`, runs it and closes it."""
