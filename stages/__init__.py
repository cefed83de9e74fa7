"""The audiobook pipeline as plain Python: ingest, attribute, cast, render, master, package.

Nothing in this package imports Prefect; flows/ wraps these functions.
"""
