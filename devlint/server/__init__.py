"""devlint in the editor: `devlint server`, a language server over stdio (pygls).

Only `protocol` imports pygls; the rest (the check adapter, project state, notebook
mapping) is plain Python, so the flake8 plugin shares it without the `server` extra.
"""
