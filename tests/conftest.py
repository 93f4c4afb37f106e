"""Settings for every test: the tests run inside someone's CI job, not as one of its releases.

A CI runner sets its own run pointers (`GITHUB_RUN_ID` in Gitea, Forgejo and GitHub Actions,
`CI_PIPELINE_NUMBER` in Woodpecker). `coordinator release` reads them to find the CI run it
runs in and the person who triggered it (`coordinator/releaser.py`); left in place, every
release a test starts would look up our own CI's run on the stand-in forge and be refused.
Tests that exercise that path set the variables themselves.
"""

from __future__ import annotations

import os

for _pointer in ("GITHUB_RUN_ID", "CI_PIPELINE_NUMBER"):
    os.environ.pop(_pointer, None)
