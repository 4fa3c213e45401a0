"""A bundle is served only if it is the one registered: its digest, recorded on the model version at
training, is checked before every load, from the cache or from the registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest

from valuation.storage import bundles, registry


@pytest.fixture
def copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained.bundle, tmp_path / "bundle"))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


ALTERATIONS: dict[str, Callable[[Path], None]] = {
    "a byte of the point model": lambda b: _flip_last_byte(b / "point.txt"),
    "a space in bundle.json": lambda b: (b / "bundle.json").write_text(
        (b / "bundle.json").read_text() + " "
    ),
    "a file renamed": lambda b: (b / "scale.txt").rename(b / "scale.txt.old"),
    "a file added": lambda b: (b / "extra.txt").write_text("x"),
    "a file added in a subfolder": lambda b: (b / "sub").mkdir() or (b / "sub/x").write_text(""),
    "a file removed": lambda b: (b / "comparables.parquet").unlink(),
}


def test_the_digest_is_the_same_for_an_identical_copy(trained, copy):
    assert bundles.fingerprint(copy) == bundles.fingerprint(trained.bundle)
    assert set(bundles.file_digests(copy)) >= {"point.txt", "scale.txt", "bundle.json"}


@pytest.mark.parametrize("alteration", ALTERATIONS)
def test_any_alteration_changes_the_digest_and_fails_the_check(trained, copy, alteration):
    recorded = bundles.fingerprint(trained.bundle)
    ALTERATIONS[alteration](copy)
    assert bundles.fingerprint(copy)[bundles.DIGEST_TAG] != recorded[bundles.DIGEST_TAG]
    with pytest.raises(bundles.BundleRejected, match="version 7: the bundle at"):
        bundles.check(copy, recorded, "model version 7")
    with pytest.raises(bundles.BundleRejected):
        bundles.load_checked(copy, recorded, "model version 7")


def test_the_refusal_names_what_differs(trained, copy):
    recorded = bundles.fingerprint(trained.bundle)
    _flip_last_byte(copy / "point.txt")
    (copy / "scale.txt").unlink()
    (copy / "notes.md").write_text("hello")
    with pytest.raises(bundles.BundleRejected) as refusal:
        bundles.check(copy, recorded, "v")
    assert "changed: point.txt" in str(refusal.value)
    assert "missing: scale.txt" in str(refusal.value)
    assert "unexpected: notes.md" in str(refusal.value)


def test_a_link_in_a_bundle_is_refused(trained, copy, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the model")
    (copy / "link.txt").symlink_to(outside)
    with pytest.raises(bundles.BundleRejected, match="is a link"):
        bundles.fingerprint(copy)


def test_training_records_the_bundle_digest_on_the_version(trained, settings):
    tags = (
        registry.client(settings).get_model_version(settings.model_name, trained.model_version).tags
    )
    assert tags[bundles.DIGEST_TAG] == bundles.fingerprint(trained.bundle)[bundles.DIGEST_TAG]
    assert tags[bundles.FILES_TAG] == bundles.fingerprint(trained.bundle)[bundles.FILES_TAG]


@contextmanager
def restored(*paths: Path):
    """The files as they were, whatever the test did to them (the session's store is shared)."""
    saved = {path: path.read_bytes() for path in paths}
    try:
        yield
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


def test_a_tampered_cache_is_refused_by_load_valuer(trained, settings):
    cache = registry.bundle_dir(settings, trained.model_version)
    with restored(cache / "point.txt"):
        _flip_last_byte(cache / "point.txt")
        with pytest.raises(bundles.BundleRejected) as refusal:
            registry.load_valuer(settings)
    message = str(refusal.value)
    assert f"{settings.model_name} version {trained.model_version}" in message
    assert "changed: point.txt" in message
    assert registry.load_valuer(settings).version == trained.model_version  # restored: served


def test_a_version_without_a_recorded_digest_is_refused(trained, settings):
    client = registry.client(settings)
    name, version = settings.model_name, trained.model_version
    recorded = client.get_model_version(name, version).tags[bundles.DIGEST_TAG]
    client.delete_model_version_tag(name, version, bundles.DIGEST_TAG)
    try:
        with pytest.raises(bundles.BundleRejected, match=f"version {version}: no bundle_sha256"):
            registry.load_valuer(settings)
    finally:
        client.set_model_version_tag(name, version, bundles.DIGEST_TAG, recorded)
    assert registry.load_valuer(settings).version == version


def test_a_tampered_registry_artifact_is_refused_and_not_cached(trained, settings, tmp_path):
    """The artifact store can be written apart from the registry's database: a download is
    checked before it enters the cache."""
    cache = registry.bundle_dir(settings, trained.model_version)
    logged = [
        path.parent
        for path in (settings.home / "mlartifacts").rglob("artifacts/bundle/bundle.json")
        if bundles.fingerprint(path.parent) == bundles.fingerprint(trained.bundle)
    ]
    assert logged, "the registered bundle is in the artifact store"
    aside = tmp_path / "cache"
    shutil.move(cache, aside)
    try:
        with restored(*(folder / "bundle.json" for folder in logged)):
            for folder in logged:
                _flip_last_byte(folder / "bundle.json")
            with pytest.raises(bundles.BundleRejected, match="as downloaded from the registry"):
                registry.load_valuer(settings)
            assert not cache.exists()
        assert registry.load_valuer(settings).version == trained.model_version  # downloaded again
        assert bundles.fingerprint(cache) == bundles.fingerprint(trained.bundle)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.move(aside, cache)


@pytest.mark.parametrize("version", ["../1", "1/../../x", "", " 1", "1.0", "v1", "١", "007", "0"])
def test_only_a_plain_version_number_becomes_a_cache_path(settings, version):
    with pytest.raises(ValueError, match="not a registered model version"):
        registry.bundle_dir(settings, version)


def test_load_valuer_refuses_a_version_that_is_not_a_number(trained, settings):
    with pytest.raises(ValueError, match="not a registered model version"):
        registry.load_valuer(settings, version="../../etc")


def test_an_unknown_version_is_no_model(trained, settings):
    with pytest.raises(registry.NoModel, match="no version 999"):
        registry.load_valuer(settings, version="999")
