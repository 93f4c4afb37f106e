"""A whole release under each `ansible.strategy`, through the CLI on the real world.

Mitogen is opt-in (README "Configuration", docs/performance.md); what the operator sees must
not depend on it: the exit codes, the lock state after and the audit trail are asserted the
same for both, and the process watch (tests/integration/strategies.py) proves which strategy
really ran. The failure paths run under both strategies too: the exiting container's rollback
and the held lock (tests/drills/test_deploy_drills.py), the secrets drill
(tests/integration/test_safety.py).
"""

from __future__ import annotations

import httpx
import pytest

from coordinator.errors import ExitCode
from tests.sandbox.coordinator_config import PRODUCTION_URL, STAGING_URL
from tests.drills.conftest import configure, escalations, release_to_production
from tests.drills.test_deploy_drills import PROD, STAGING, assert_free, events_of
from tests.integration.conftest import ReleaseWorld, running_digest
from tests.integration.strategies import StrategyWatch, ansible_strategy  # noqa: F401 (fixture)

pytestmark = pytest.mark.world

# Every audit record of a first release to staging and production, oldest first.
RELEASE_EVENTS: list[tuple[str, str | None, str | None]] = [
    ("release.started", None, "started"), ("validate.passed", None, "passed"), ("tag.pushed", None, "pushed"),
    ("build.completed", None, "success"), ("lock.acquired", "staging", "acquired"),
    ("lock.released", "staging", "released"), ("stage.deployed", "staging", "passed"),
    ("approval.recorded", "production", "approved"), ("deploy.started", "production", "started"),
    ("lock.acquired", "production", "acquired"), ("lock.released", "production", "released"),
    ("deploy.verified", "production", "verified"), ("release.announced", "production", "completed"),
]


def test_a_release_deploys_to_staging_and_production_the_same_under_either_strategy(
        release_world: ReleaseWorld, ansible_strategy: StrategyWatch) -> None:  # noqa: F811 (fixture)
    rw = release_world
    configure(rw)

    release_to_production(rw, "1.0.0")  # release (exit 4 at the gate), approve, resume (exit 0)

    assert_free(rw, "staging")
    assert_free(rw, "production")
    assert events_of(rw, "1.0.0") == RELEASE_EVENTS, "\n".join(map(str, events_of(rw, "1.0.0")))
    assert escalations(rw) == []
    for url in (STAGING_URL, PRODUCTION_URL):
        assert httpx.get(f"{url}/version").text.strip() == "1.0.0"
    assert running_digest(STAGING) == running_digest(PROD)
    ansible_strategy.assert_ran()
