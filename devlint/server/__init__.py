"""devlint in the editor: `devlint server`, a language server over stdio (pygls).

`checking` (the one adapter to devlint's check pipeline) and `project` are plain Python,
without pygls, so the flake8 plugin shares them without the `server` extra.
"""
