"""The voice library: cards, rights, reference clips and fingerprints of the voices a book may be cast in.

Each voice is a folder under voices/ (bundled) or <workspace>/voices/ holding its voice.toml card,
its reference clip(s) and its consent document. Nothing in this package imports Prefect.
"""
