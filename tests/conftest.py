"""Shared fixtures: the real-world corpus beside the repository, and a trust configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remediator.core import TrustConfig

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("REMEDIATOR_CORPUS", REPO.parent / "shared" / "corpus"))

OWNER = "111122223333"
PARTNER = "444455556666"
STRANGER = "999999999999"
TRUSTED_ORG = "o-a1b2c3d4e5"


@pytest.fixture
def config() -> TrustConfig:
    return TrustConfig(owner_account=OWNER, trusted_accounts=frozenset({PARTNER}), trusted_org_ids=frozenset({TRUSTED_ORG}))


def corpus_dir(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"corpus folder {path} not found (set REMEDIATOR_CORPUS)")
    return path
