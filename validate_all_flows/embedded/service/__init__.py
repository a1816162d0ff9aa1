"""The Blocktrust reference service (FastAPI on blocktrust_native) and its chain worker."""
