"""A model bundle's fingerprint: SHA-256 over its files' names and contents, recorded on the
registered version at training and checked before any load, so a bundle altered after
registration (in the artifact store or in the local cache) is never served."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from valuation.valuer import Valuer

DIGEST_TAG = "bundle_sha256"
"""The model-version tag holding the bundle's digest."""
FILES_TAG = "bundle_files"
"""The model-version tag holding each file's digest (JSON), to name what differs on a mismatch."""
_CHUNK = 1 << 20


class BundleRejected(ValueError):
    """A bundle whose digest is not the one recorded at registration (or none was recorded)."""


def file_digests(folder: str | Path) -> dict[str, str]:
    """Each file under `folder` (recursively, by POSIX path relative to it) -> its SHA-256."""
    folder = Path(folder)
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            # A link would let the bundle read (and be fingerprinted from) a file outside it.
            raise BundleRejected(f"{folder}: {path.relative_to(folder)} is a link")
        if path.is_file():
            sha = hashlib.sha256()
            with path.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    sha.update(chunk)
            digests[path.relative_to(folder).as_posix()] = sha.hexdigest()
    return digests


def digest(files: dict[str, str]) -> str:
    """The bundle's digest from its `file_digests`: a renamed, added or missing file changes it
    as surely as a changed byte (JSON keeps names with any character unambiguous)."""
    listing = json.dumps(sorted(files.items()), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(listing.encode()).hexdigest()


def fingerprint(folder: str | Path) -> dict[str, str]:
    """The tags to record on a registered version for the bundle in `folder`."""
    files = file_digests(folder)
    return {DIGEST_TAG: digest(files), FILES_TAG: json.dumps(files, sort_keys=True)}


def check(folder: str | Path, recorded: dict[str, str], what: str) -> None:
    """Raises BundleRejected unless `folder` has the digest in `recorded` (the version's tags);
    `what` names the bundle in the message ("kuaishou-account-price version 3")."""
    expected = recorded.get(DIGEST_TAG)
    if not expected:
        raise BundleRejected(
            f"{what}: no {DIGEST_TAG} was recorded at registration, so its bundle cannot be "
            "checked; it is not loaded (retrain, or promote a version registered with one)"
        )
    files = file_digests(folder)
    if digest(files) != expected:
        raise BundleRejected(
            f"{what}: the bundle at {folder} is not the one registered ({_differences(files, recorded)}); "
            "it is not loaded"
        )


def load_checked(folder: str | Path, recorded: dict[str, str], what: str) -> Valuer:
    """`Valuer.load` of a private copy of `folder`, checked first: what is checked is what is
    loaded, even if someone writes to `folder` in between."""
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        copy = Path(scratch) / "bundle"
        shutil.copytree(folder, copy, symlinks=True)
        check(copy, recorded, what)
        return Valuer.load(copy)


def _differences(files: dict[str, str], recorded: dict[str, str]) -> str:
    try:
        expected = json.loads(recorded.get(FILES_TAG) or "")
    except ValueError:
        return "its digest differs"
    if not isinstance(expected, dict):
        return "its digest differs"
    changed = sorted(
        name for name in files.keys() & expected.keys() if files[name] != expected[name]
    )
    missing = sorted(expected.keys() - files.keys())
    extra = sorted(files.keys() - expected.keys())
    parts = [
        f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
        for label, names in (("changed", changed), ("missing", missing), ("unexpected", extra))
        if names
    ]
    return "; ".join(parts) or "its digest differs"
