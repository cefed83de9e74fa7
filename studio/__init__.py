"""The review studio: a small FastAPI app over the files `audiobook produce` writes (`audiobook studio`)."""
