"""Compiled trees price exactly as LightGBM does, are cached beside their bundle and trusted only
by the digest the registry holds, and never stand between a user and a price."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from valuation import compiled
from valuation.encoding import FEATURE_NAMES
from valuation.storage import compiled_cache, registry
from valuation.valuer import BOOSTERS, Valuer

ROWS = 100_000


@pytest.fixture(scope="module")
def pair(trained):
    """The session's model twice: priced by LightGBM, and by its compiled trees."""
    plain = Valuer.load(trained.bundle)
    fast = Valuer.load(trained.bundle)
    models = {name: fast.model_text(name) for name in BOOSTERS}
    fast.use_compiled(
        {
            name: compiled.CompiledTrees(compiled.compile_trees(text), len(FEATURE_NAMES))
            for name, text in models.items()
        }
    )
    return plain, fast


def random_rows(valuer: Valuer, rows: int, seed: int = 0, odd: bool = False) -> np.ndarray:
    """Listings as the encoder writes them: fans from 0 to 10亿, every flag, every category's
    code and the unknown category's. `odd`: also codes no category has, negative ones and
    missing values (inputs the encoder never writes, scored by the trees all the same)."""
    rng = np.random.default_rng(seed)
    matrix = np.empty((rows, len(FEATURE_NAMES)))
    for column, name in enumerate(FEATURE_NAMES):
        if name == "fans":
            matrix[:, column] = np.floor(10 ** rng.uniform(0, 9, rows))
        elif name == "category":
            low, high = (
                (-1, valuer.encoder.unknown_code + 3) if odd else (0, valuer.encoder.unknown_code)
            )
            matrix[:, column] = rng.integers(low, high + 1, rows)
        else:
            matrix[:, column] = rng.integers(0, 2, rows)
    if odd:
        matrix[rng.random(matrix.shape) < 0.01] = np.nan
    return matrix


def test_compiled_trees_score_exactly_as_lightgbm_whatever_the_input(pair):
    plain, fast = pair
    matrix = random_rows(plain, ROWS, odd=True)
    for name in BOOSTERS:
        expected = plain.boosters[name].predict(matrix)
        assert np.array_equal(fast.predict(name, matrix), expected), name  # bit for bit


def test_compiled_prices_equal_lightgbms_on_100000_random_listings(pair):
    plain, fast = pair
    matrix = random_rows(plain, ROWS, seed=1)
    for level in (0.5, 0.8, 0.95):
        for ours, theirs in zip(
            fast.value_matrix(matrix, level), plain.value_matrix(matrix, level), strict=True
        ):
            assert np.array_equal(ours, theirs)


def test_a_single_quote_is_the_same_compiled_or_not(pair, valuer):
    from valuation.listing import Listing

    plain, fast = pair
    for fans in (0, 1, 999, 13_130, 131_300, 2_000_000, 1_000_000_000):
        for category in (*plain.encoder.categories[:3], "never seen"):
            listing = Listing(
                fans=fans,
                violations=fans % 2 == 0,
                live_permission=True,
                verified=fans > 5000,
                category=category,
            )
            assert fast.value(listing) == plain.value(listing)


def test_one_thread_and_many_give_the_same_scores(pair):
    _, fast = pair
    matrix = random_rows(fast, 50_000, seed=3)
    trees = fast.compiled["point"]
    assert np.array_equal(trees.predict(matrix, threads=1), trees.predict(matrix, threads=3))


def test_rows_of_the_wrong_width_are_refused(pair):
    _, fast = pair
    with pytest.raises(ValueError, match="columns"):
        fast.compiled["point"].predict(np.zeros((3, len(FEATURE_NAMES) + 1)))


# The cache and its trust ---------------------------------------------------------------------


@pytest.fixture
def bundle(trained, tmp_path):
    import shutil

    return shutil.copytree(trained.bundle, tmp_path / "models" / "bundle")


@pytest.fixture
def models(trained):
    valuer = Valuer.load(trained.bundle)
    return {name: valuer.model_text(name) for name in BOOSTERS}


class Compilations:
    """Counts compile_trees calls (the real compiler runs)."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = compiled.compile_trees

        def counted(text):
            self.count += 1
            return real(text)

        monkeypatch.setattr(compiled, "compile_trees", counted)


def test_the_first_load_compiles_caches_and_records_the_digests(bundle, models, monkeypatch):
    compilations, recorded = Compilations(monkeypatch), {}
    trees = compiled_cache.load(bundle, models, {}, recorded.__setitem__)
    assert compilations.count == len(BOOSTERS)
    here = compiled_cache.folder(bundle, compiled.target())
    digests = json.loads(recorded[compiled_cache.tag(compiled.target())])
    for name in BOOSTERS:
        assert digests[name] == hashlib.sha256((here / f"{name}.o").read_bytes()).hexdigest()
    assert set(trees) == set(BOOSTERS)
    assert not (bundle / f"{BOOSTERS[0]}.o").exists()  # beside the bundle, never in it


def test_a_recorded_cache_is_loaded_without_compiling(bundle, models, monkeypatch):
    recorded = {}
    first = compiled_cache.load(bundle, models, {}, recorded.__setitem__)
    compilations = Compilations(monkeypatch)
    again = compiled_cache.load(bundle, models, recorded, pytest.fail)
    assert compilations.count == 0
    matrix = np.array([[131_300.0, 0, 1, 1, 2]])
    assert again["point"].predict(matrix)[0] == first["point"].predict(matrix)[0]


@pytest.mark.parametrize(
    "tamper",
    ["a flipped byte", "a file removed", "another target recorded", "nothing recorded"],
)
def test_a_missing_stale_or_altered_cache_is_compiled_again(bundle, models, monkeypatch, tamper):
    recorded = {}
    compiled_cache.load(bundle, models, {}, recorded.__setitem__)
    here = compiled_cache.folder(bundle, compiled.target())
    original = (here / "point.o").read_bytes()
    if tamper == "a flipped byte":
        altered = bytearray(original)
        altered[len(altered) // 2] ^= 0xFF
        (here / "point.o").write_bytes(bytes(altered))
    elif tamper == "a file removed":
        (here / "point.o").unlink()
    elif tamper == "another target recorded":
        recorded = {compiled_cache.tag("0123456789abcdef"): next(iter(recorded.values()))}
    else:
        recorded = {}
    compilations, rerecorded = Compilations(monkeypatch), {}
    compiled_cache.load(bundle, models, recorded, rerecorded.__setitem__)
    assert compilations.count == len(BOOSTERS)
    assert (here / "point.o").read_bytes() == original  # rebuilt: the same code again
    assert rerecorded  # and recorded again


def test_a_cache_that_cannot_be_recorded_still_prices_and_is_not_trusted_later(
    bundle, models, monkeypatch
):
    def refuse(tag, value):
        raise PermissionError("read-only registry")

    trees = compiled_cache.load(bundle, models, {}, refuse)
    assert trees is not None  # compiled from the verified bundle: used in this process
    compilations = Compilations(monkeypatch)
    compiled_cache.load(bundle, models, {}, refuse)
    assert compilations.count == len(BOOSTERS)  # nothing on record: compiled again


def test_where_nothing_compiles_lightgbm_prices(bundle, models, monkeypatch, trained):
    def unavailable(text):
        raise compiled.CompilerUnavailable("no LLVM here")

    monkeypatch.setattr(compiled, "compile_trees", unavailable)
    assert compiled_cache.load(bundle, models, {}, pytest.fail) is None
    valuer = Valuer.load(trained.bundle)
    valuer.use_compiled(None)
    estimate = valuer.value_matrix(np.array([[131_300.0, 0, 1, 1, 2]]))[0][0]
    assert estimate >= 1


# Through the registry, as a user's process loads the champion --------------------------------


def test_load_valuer_prices_with_compiled_trees_the_registry_vouches_for(trained, settings):
    valuer = registry.load_valuer(settings)
    assert valuer.compiled is not None
    tags = registry.client(settings).get_model_version(settings.model_name, valuer.version).tags
    digests = json.loads(tags[compiled_cache.tag(compiled.target())])
    here = compiled_cache.folder(registry.bundle_dir(settings, valuer.version), compiled.target())
    for name in BOOSTERS:
        assert digests[name] == hashlib.sha256((here / f"{name}.o").read_bytes()).hexdigest()


def test_compiled_trees_can_be_turned_off(trained, settings):
    off = settings.model_copy(update={"compiled_trees": False})
    assert registry.load_valuer(off).compiled is None


def test_a_quote_from_the_command_line_imports_neither_lightgbm_nor_mlflow(trained, settings):
    """Start-up: a compiled champion on the embedded store is resolved and priced without them."""
    registry.load_valuer(settings)  # the compiled cache is in place
    script = (
        "import sys, cli\n"
        "code = cli.main(['quote', '--fans', '13.13W', '--violations', '无违规', "
        "'--live-permission', '已开通', '--verified', '已认证', '--category', '美食'])\n"
        "print(sorted(m for m in ('lightgbm', 'mlflow', 'sklearn') if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    env = {"VALUATION_HOME": str(settings.home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "estimate" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_quote_prices_as_the_batch_path_does_bit_for_bit(pair):
    """The quote path reads its prices in plain Python floats (`Valuer._prices_one`), the batch
    path in arrays: the same numbers, compiled or not, at any level."""
    from valuation.listing import Listing

    rng = np.random.default_rng(7)
    categories = [*pair[0].encoder.categories, "never seen"]
    listings = [
        Listing(
            fans=int(10 ** rng.uniform(0, 9.5)),
            violations=bool(rng.integers(2)),
            live_permission=bool(rng.integers(2)),
            verified=bool(rng.integers(2)),
            category=categories[rng.integers(len(categories))],
        )
        for _ in range(5_000)
    ]
    for valuer in pair:
        for level in (0.5, 0.8, 0.95):
            one_by_one = [valuer.value(listing, level) for listing in listings]
            assert one_by_one == valuer.value_many(listings, level)
