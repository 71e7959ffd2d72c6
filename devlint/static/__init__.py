"""The static half: reads source with `ast`, never imports torch or the code it checks.

Layers, lowest first (held by the import-linter contract in pyproject.toml): the source and
its scopes, the device values an expression can hold, the project index of facts across
files, a file's context, the helpers the checks share, and the pipeline that runs them.
"""
