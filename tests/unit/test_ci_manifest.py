"""Artifact manifests: what the tag's build says it produced, checked before we trust it."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from coordinator.ci import ArtifactManifest, CIRun, RunConclusion, RunStatus
from coordinator.ci.base import manifest_from_bytes, manifest_from_zip, parse_manifest
from coordinator.errors import BuildFailed

SHA = "d" * 40
DIGEST = "sha256:" + "e" * 64
RUN = CIRun(id="12", status=RunStatus.COMPLETED, conclusion=RunConclusion.SUCCESS, head_sha=SHA)
GOOD = {"image": "127.0.0.1:45000/acme/sample", "tag": "v1.0.0", "digest": DIGEST, "commit": SHA}


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_good_manifest_parses() -> None:
    manifest = parse_manifest(json.dumps(GOOD).encode(), source="test", run=RUN)
    assert manifest == ArtifactManifest(**GOOD)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "e" * 64, "sha256:" + "E" * 64, "e" * 64])
def test_a_malformed_digest_is_refused_naming_the_field(digest: str) -> None:
    with pytest.raises(BuildFailed, match="digest") as caught:
        parse_manifest(json.dumps({**GOOD, "digest": digest}).encode(), source="test", run=RUN)
    assert "\n" not in caught.value.message


def test_a_manifest_from_another_commit_is_refused() -> None:
    with pytest.raises(BuildFailed, match="another build"):
        parse_manifest(json.dumps({**GOOD, "commit": "f" * 40}).encode(), source="test", run=RUN)


def test_a_missing_field_is_named() -> None:
    body = {key: value for key, value in GOOD.items() if key != "image"}
    with pytest.raises(BuildFailed, match="image is missing"):
        parse_manifest(json.dumps(body).encode(), source="test", run=RUN)


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(BuildFailed, match="is not JSON"):
        parse_manifest(b"<html>", source="test", run=RUN)


def test_the_manifest_is_found_inside_the_zip() -> None:
    data = zipped({"README": b"x", "artifact-manifest.json": json.dumps(GOOD).encode()})
    assert manifest_from_zip(data, source="test", run=RUN).digest == DIGEST


def test_a_zip_without_the_manifest_file_is_a_clear_error() -> None:
    with pytest.raises(BuildFailed, match="holds no artifact-manifest.json"):
        manifest_from_zip(zipped({"other.json": b"{}"}), source="test", run=RUN)


def test_bytes_may_be_either_zip_or_json() -> None:
    raw = json.dumps(GOOD).encode()
    assert manifest_from_bytes(raw, source="t", run=RUN) == manifest_from_bytes(
        zipped({"artifact-manifest.json": raw}), source="t", run=RUN)
