"""Serves app.py with processman.serve; SERVE_ALLOW_UNSIGNED (comma-separated
paths) is passed as allow_unsigned, SERVE_ROOT_PATH as uvicorn's root_path."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app import app

import processman

allow = [p for p in os.environ.get("SERVE_ALLOW_UNSIGNED", "").split(",") if p]
processman.serve(app, allow_unsigned=allow, root_path=os.environ.get("SERVE_ROOT_PATH", ""), log_level="warning")
