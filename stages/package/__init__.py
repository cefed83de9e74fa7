"""Packaging: album files, transcripts, pages and reports."""
