"""The images the benchmarks deploy: the sample service at two versions and a broken one."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.sandbox.coordinator_config import IMAGE, REPO_ROOT

EXAMPLE = REPO_ROOT / "tests" / "sample-service"


@dataclass(frozen=True)
class BenchImages:
    v1: str  # digest serving 1.0.0
    v2: str  # digest serving 1.1.0
    exits: str  # digest of an image whose container exits at once (version 1.2.0)
    unhealthy: str  # digest of an image whose /health answers 404 (version 1.3.0)


def _build(version: str, variant: str) -> str:
    from tests.sandbox import sample
    from tests.sandbox.imagebuild import build_and_push

    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        context = Path(tmp) / "app"
        shutil.copytree(EXAMPLE, context)
        (context / "VERSION").write_text(version + "\n", encoding="utf-8")
        sample.make_variant(context, variant)
        return build_and_push(context, IMAGE, f"bench-{version}-{variant}")


def build_bench_images() -> BenchImages:
    return BenchImages(v1=_build("1.0.0", "good"), v2=_build("1.1.0", "good"), exits=_build("1.2.0", "exits"),
                       unhealthy=_build("1.3.0", "broken-health"))
