"""`python -m processman`: runs the ready binary of the server extra, or
says how to install it."""

import subprocess
import sys


def test_without_the_server_extra_it_says_how_to_install_it():
    res = subprocess.run([sys.executable, "-m", "processman", "serve"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, res
    assert 'pip install "processman[server]"' in res.stderr, res.stderr
