"""Exporthub domain package: jobs, permissions, export config, lake, files, audit.

This package never imports streamlit or huey (tests/test_architecture.py keeps it so).
"""

__version__ = "0.1.0"
