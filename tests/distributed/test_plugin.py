"""The scheduler plugin's version check (the plugin itself runs in test_client.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")
import distributed

import hlg
from hlg.distributed import SUPPORTED_VERSIONS
from hlg.distributed.plugin import check_version


@pytest.mark.parametrize("version", ["2025.4.0", "2025.12.1", "2026.8.0", "2026.8.0+3.g1a2b"])
def test_check_version_accepts_tested_releases(version):
    check_version(version)


@pytest.mark.parametrize("version", ["2025.3.1", "2026.9.0", "2027.1.0", "nonsense", ""])
def test_check_version_refuses_other_releases(version):
    with pytest.raises(hlg.UsageError, match="supports distributed 2025.4 to 2026.8"):
        check_version(version)


def test_installed_distributed_is_supported():
    first, last = SUPPORTED_VERSIONS
    check_version(distributed.__version__)
    assert first <= tuple(int(p) for p in distributed.__version__.split(".")[:2]) <= last
