"""The training orchestrator: load -> validate -> split -> search -> fit -> evaluate -> track -> register.

The only place in training that touches MLflow or the disk; every step it calls is a plain function.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

import valuation
from training import steps
from training.evaluation import accuracy_by
from training.promotion import champion_errors, record_decision
from training.report import log_evaluation
from training.tracking import use_experiment
from valuation import monitoring
from valuation.encoding import Encoder
from valuation.infra.settings import Settings
from valuation.loading import (
    export_files,
    export_name,
    load_exports,
    unread_columns,
    write_rejects,
)
from valuation.schema import FEATURES
from valuation.storage import bundles, compiled_cache, registry
from valuation.valuer import Valuer

MODEL_FILE = Path(valuation.__file__).parent / "mlflow_model.py"
INPUT_EXAMPLE = pd.DataFrame({field.name: list(field.examples[:2]) for field in FEATURES})


@dataclass
class TrainingOutcome:
    run_id: str
    model_version: str
    metrics: dict[str, dict[str, float]]
    rows: int
    rejected: int
    split_by: str
    rejects_file: Path | None
    repeated: int
    """Rows left out as a sale an earlier row already gave (`valuation.loading.sale_keys`)."""
    repeats_file: Path | None
    typos: int
    """Sales the served fit took for price typos and did not learn from (`steps.price_typos`)."""
    typos_file: Path | None
    bundle: Path
    decision: steps.Decision


def train(
    data: str | Path | list[str | Path],
    settings: Settings,
    trials: int | None = None,
    say: Callable[[str], None] = lambda line: None,
    engine: str = "local",
    scheduler: str | None = None,
) -> TrainingOutcome:
    """`data`: a file, a folder of files or several (`valuation.loading.export_files`), read as
    one export. `engine="dask"` parses, splits and fits the point model on a Dask cluster (the
    one at `scheduler`, or a local one); everything after the fit is the same for both engines."""
    export = Export.of(data)
    unread = unread_columns(export.files)
    if unread:
        say(
            f"columns not read: {', '.join(unread)} (no field has such a header; "
            "docs/cli.md lists the headers read)"
        )
    with ExitStack() as stack:
        if engine == "dask":
            from valuation.infra.dask_engine import cluster

            dask_client = stack.enter_context(cluster(scheduler))
            prepared = _prepare_dask(dask_client, export, settings, say)
        else:
            prepared = _prepare_local(export, settings, say)
        return _train(export, settings, prepared, trials, say)


@dataclass(frozen=True)
class Export:
    """The files trained on, read as one export; the name its lists are written under, and how
    the run and its report name the data (one file's own name, or the export's)."""

    files: list[Path]
    name: str
    label: str

    @classmethod
    def of(cls, data: str | Path | list[str | Path]) -> Export:
        files = export_files(data)
        name = export_name(data, files)
        return cls(files, name, files[0].name if name == files[0].stem else name)

    def digest(self) -> str:
        """The file's SHA-256; of several, the SHA-256 of their SHA-256s, in order."""
        digests = [steps.data_digest(file) for file in self.files]
        if len(digests) == 1:
            return digests[0]
        return hashlib.sha256("\n".join(digests).encode()).hexdigest()

    def list_file(self, settings: Settings, kind: str) -> Path:
        """Where a list of rows not trained on is written: `models/<name>.<kind>.csv`."""
        return settings.bundles / f"{self.name}.{kind}.csv"


@dataclass
class _Prepared:
    total: int
    rejects: pd.DataFrame
    repeats: pd.DataFrame
    split: steps.Split
    """For Dask, samples: the search, the baselines and the evaluation run on the client."""
    rows_train: int
    rows_holdout: int
    encoder: Encoder
    fit: Callable[[steps.Trial, dict, bool], tuple[Valuer, pd.DataFrame]]
    """(configuration, card, everything): fitted on the training sales, or on all of them; and
    with `everything`, the sales it took for price typos (`steps.price_typos`), each after its
    place (`line`, and `file` in an export of several files)."""


def _prepare_local(export: Export, settings: Settings, say) -> _Prepared:
    loaded = load_exports(export.files, require_price=True, drop_repeats=True)
    _keep_unread(loaded.rejects, loaded.repeats, loaded.total, export, settings, say)
    sales = steps.validate(loaded, settings.max_reject_share)
    split = steps.split(sales, settings.holdout_share, settings.seed)
    encoder = steps.vocabulary(split.train)
    folds, seed = settings.cv_folds, settings.seed
    # Dated sales: each restated to the market date (the latest sale) by the index of its own
    # fit, so the point model values listings as of that date.
    dated = split.by == "time"  # most of the export's sales have a date
    index = steps.market_index(split.train, encoder, folds, seed) if dated else None
    every = pd.concat([split.train, split.holdout])
    vocabulary = steps.vocabulary(every)
    every_index = steps.market_index(every, vocabulary, folds, seed) if dated else None
    split = _restated_split(split, index, every_index)

    def fit(best: steps.Trial, card: dict, everything: bool) -> tuple[Valuer, pd.DataFrame]:
        if not everything:
            card = steps.with_market(card, index)
            return steps.fit(split.train, encoder, best, seed, card, folds), pd.DataFrame()
        late = steps.after_market_date(every, every_index)
        _say_late(len(late), late.max() if len(late) else None, every_index, say)
        card = steps.with_market(card, every_index)
        # Typos are screened with estimates that did not see the sale: the search's out-of-fold
        # ones for the training sales, the evaluated model's for the holdout. Both value as of
        # the evaluated fit's market date; moved to the whole export's.
        screen_with = None
        if best.estimate is not None and best.holdout_estimate is not None:
            screen_with = np.concatenate([best.estimate, best.holdout_estimate])
            if dated:
                screen_with = screen_with - steps.levels_on(every, every_index, index.market_date)
        restated = steps.restated(every, every_index)
        fitted = steps.fit_with_typos(restated, vocabulary, best, seed, card, folds, screen_with)
        return fitted[0], placed(fitted[1])

    def placed(typos: pd.DataFrame) -> pd.DataFrame:  # indexed by the rows' places in the export
        typos = typos.sort_index()
        place = loaded.place(typos.index.to_numpy(dtype=np.int64))
        return pd.concat([place, typos.reset_index(drop=True)], axis=1)

    return _Prepared(
        total=loaded.total,
        rejects=loaded.rejects,
        repeats=loaded.repeats,
        split=split,
        rows_train=len(split.train),
        rows_holdout=len(split.holdout),
        encoder=encoder,
        fit=fit,
    )


def _prepare_dask(dask_client, export: Export, settings: Settings, say) -> _Prepared:
    from training import distributed

    sales = distributed.load(dask_client, export.files, settings.holdout_share, settings.seed)
    _keep_unread(sales.rejects, sales.repeats, sales.total, export, settings, say)
    steps.check_rejects(
        sales.total,
        len(sales.rejects),
        sales.rows_train + sales.rows_holdout,
        settings.max_reject_share,
    )
    # Dated sales: restated to the market date as on one machine, by an index read off the
    # client's sample of the training sales (and, for the served fit, of every sale).
    folds, seed = settings.cv_folds, settings.seed
    split, dated = sales.split, sales.split.by == "time"
    index = steps.market_index(split.train, sales.vocabulary, folds, seed) if dated else None
    every = distributed.sample_of_everything(sales, seed) if dated else None
    every_index = steps.market_index(every, sales.vocabulary, folds, seed) if dated else None
    split = _restated_split(split, index, every_index)

    def fit(best: steps.Trial, card: dict, everything: bool) -> tuple[Valuer, pd.DataFrame]:
        if not everything:
            card = steps.with_market(card, index)
            valuer, typos = distributed.fit(
                dask_client, sales, best, seed, card, False, index, folds
            )
        else:
            _say_late(*distributed.after_market_date(sales, every_index), every_index, say)
            card = steps.with_market(card, every_index)
            valuer, typos = distributed.fit(
                dask_client, sales, best, seed, card, True, every_index, folds
            )
        return valuer, sales.place(typos)

    return _Prepared(
        total=sales.total,
        rejects=sales.rejects,
        repeats=sales.repeats,
        split=split,
        rows_train=sales.rows_train,
        rows_holdout=sales.rows_holdout,
        encoder=sales.vocabulary,
        fit=fit,
    )


def _restated_split(split: steps.Split, index, every_index) -> steps.Split:
    """The training sales restated to their index's market date, and the holdout to the same
    date by the index of every sale: the holdout measures the quote as a served model makes it,
    at its market date, the market's moves since taken out (they are the index's to tell, not
    the quote's error). Without dates, the split as it is."""
    if index is None:
        return steps.Split(steps.restated(split.train, None), split.holdout, split.by)
    holdout = steps.restated(split.holdout, every_index, as_of=index.market_date)
    return steps.Split(steps.restated(split.train, index), holdout, split.by)


def _say_late(count: int, latest, index, say) -> None:
    if count:
        say(
            f"{count} sales dated after the market date {index.market_date} "
            f"(latest {pd.Timestamp(latest).date()}), taken at its level: check their dates"
        )


def _keep_unread(rejects, repeats, total: int, export: Export, settings: Settings, say) -> None:
    """The rows not trained on, written and said before anything else, even when training then
    refuses: those that could not be read, and those that repeat an earlier row's sale. A list
    an earlier training on a file of this name left is removed when this one has none (its
    typos' too: this training's are written once it has fitted, `_keep_typos`)."""
    settings.bundles.mkdir(parents=True, exist_ok=True)
    rejects_file = export.list_file(settings, "rejects")
    repeats_file = export.list_file(settings, "repeats")
    export.list_file(settings, "typos").unlink(missing_ok=True)
    for rows, file in ((rejects, rejects_file), (repeats, repeats_file)):
        if len(rows):
            write_rejects(rows, file)
        else:
            file.unlink(missing_ok=True)
    if len(rejects):
        say(f"{len(rejects)} of {total} rows rejected, listed in {rejects_file}")
    if len(repeats):
        say(
            f"{len(repeats)} rows repeat an earlier row's sale (the same listing id, date, price "
            "and details: an export written twice?), each sale trained on once; listed in "
            f"{repeats_file}"
        )


def _train(export: Export, settings, prepared: _Prepared, trials, say) -> TrainingOutcome:
    """The stages, in one MLflow run: what was trained on, the search, the holdout's evaluation
    and the served fit, the registration, the gate."""
    import mlflow

    split = prepared.split
    rejects_file = export.list_file(settings, "rejects") if len(prepared.rejects) else None
    repeats_file = export.list_file(settings, "repeats") if len(prepared.repeats) else None
    say(
        f"{prepared.rows_train} sales to train on, {prepared.rows_holdout} held out "
        f"({split.by} split)"
    )
    trials = trials or settings.search_trials or len(steps.CANDIDATES)
    digest = export.digest()
    client = registry.client(settings)
    use_experiment(settings)
    with mlflow.start_run(run_name=f"train-{export.name}") as run:
        _track_inputs(export, settings, prepared, trials, digest, (rejects_file, repeats_file))
        best = _search(settings, prepared, trials, say)
        card = {
            "data_sha256": digest,
            "data_rows": prepared.rows_train + prepared.rows_holdout,
            "split_by": split.by,
            "split_seed": settings.seed,
            "holdout_share": settings.holdout_share,
            "profile": monitoring.profile(split.train),
        }
        evaluation, valuer, typos = _evaluate_and_fit(prepared, best, card, say)
        typos_file = _keep_typos(typos, valuer.card.screened_typos, export, settings, say)
        log_evaluation(evaluation, valuer, f"{settings.model_name}, trained on {export.label}")
        version, local = _register(client, settings, valuer, say)
        decision = _gate(client, settings, version, evaluation.metrics["model"], split, card, say)
    return TrainingOutcome(
        run_id=run.info.run_id,
        model_version=version,
        metrics=evaluation.metrics,
        rows=prepared.total,
        rejected=len(prepared.rejects),
        split_by=split.by,
        rejects_file=rejects_file,
        repeated=len(prepared.repeats),
        repeats_file=repeats_file,
        typos=valuer.card.screened_typos,
        typos_file=typos_file,
        bundle=local,
        decision=decision,
    )


def _track_inputs(export: Export, settings, prepared: _Prepared, trials, digest, listed) -> None:
    """On the run: the data (path, or the paths of several files; digest, rows, rejects and
    repeats, `listed` their files), the split and the search's settings."""
    import mlflow

    split = prepared.split
    mlflow.log_params(
        {
            "data_path": _paths(export.files),
            "data_name": export.label,
            "data_sha256": digest,
            "rows_total": prepared.total,
            "rows_rejected": len(prepared.rejects),
            "rows_repeated": len(prepared.repeats),
            "rows_train": prepared.rows_train,
            "rows_holdout": prepared.rows_holdout,
            "split_by": split.by,
            "search_trials": trials,
            "cv_folds": settings.cv_folds,
            "seed": settings.seed,
        }
    )
    sales = pd.concat([split.train, split.holdout], ignore_index=True)
    sales = sales.drop(columns=[steps.MARKET_LEVEL], errors="ignore")  # the export's columns
    with warnings.catch_warnings():  # MLflow's hints on int columns and on local sources
        warnings.simplefilter("ignore", UserWarning)
        source = export.files[0].resolve()
        source = source if len(export.files) == 1 else source.parent
        dataset = mlflow.data.from_pandas(sales, source=str(source), name=export.label)
        mlflow.log_input(dataset, "training")
    for listing in filter(None, listed):
        mlflow.log_artifact(str(listing), "rejects")


def _search(settings, prepared: _Prepared, trials, say) -> steps.Trial:
    """The candidates cross-fitted on the training sales, each a nested run; the chosen one."""
    import mlflow

    def track_trial(trial: steps.Trial) -> None:
        with mlflow.start_run(run_name="search-trial", nested=True):
            mlflow.log_params({**trial.params, "rounds": trial.rounds})
            mlflow.log_metric("cv_l1_log_price", trial.cv_l1)
        say(f"candidate {trial.params} -> CV L1 {trial.cv_l1:.4f} at {trial.rounds} rounds")

    ranked = steps.search(
        prepared.split.train,
        prepared.encoder,
        trials,
        settings.cv_folds,
        settings.seed,
        track_trial,
    )
    best = ranked[0]
    default = "the default" if best.params == dict(steps.CANDIDATES[0]) else "beyond noise"
    say(f"chosen ({default}): {best.params}")
    mlflow.log_params({f"best_{key}": value for key, value in best.params.items()})
    mlflow.log_param("best_rounds", best.rounds)
    return best


def _evaluate_and_fit(prepared: _Prepared, best: steps.Trial, card: dict, say):
    """The holdout's figures from a fit that did not see it; then the served model, fitted the
    same way on every sale (the holdout never going back in cost accuracy)."""
    import mlflow

    split = prepared.split
    evaluation = steps.evaluate(prepared.fit(best, card, False)[0], split)
    metrics = evaluation.metrics
    best.holdout_estimate = np.log(evaluation.predictions["price_estimate"].to_numpy())
    say(
        f"holdout MdAPE {metrics['model']['mdape']:.1%}; fitting the served model on all "
        f"{prepared.rows_train + prepared.rows_holdout} sales"
    )
    by = accuracy_by(evaluation.predictions)
    card = {**card, "holdout_metrics": metrics, "holdout_by": by}
    valuer, typos = prepared.fit(best, card, True)
    mlflow.log_params(
        {
            "served_rounds": valuer.card.params["rounds"],
            "screened_typos": valuer.card.screened_typos,
        }
    )
    for who, values in metrics.items():
        mlflow.log_metrics({f"{who}_{name}": value for name, value in values.items()})
    return evaluation, valuer, typos


def _paths(files: list[Path], limit: int = 2000) -> str:
    """The files' paths as one MLflow parameter (at most `limit` characters)."""
    joined = "; ".join(map(str, files))
    if len(joined) <= limit:
        return joined
    return f"{files[0]}; ... ({len(files)} files in all); {files[-1]}"


def _keep_typos(typos: pd.DataFrame, count: int, export: Export, settings: Settings, say):
    """The sales the served fit took for price typos, said and listed beside the rejects (their
    line, id, date, price, the estimate they were measured against and the ratio), logged on the
    run; the file, or None (an earlier training's list removed)."""
    import mlflow

    file = export.list_file(settings, "typos")
    if not count:
        file.unlink(missing_ok=True)
        return None
    write_rejects(typos, file)
    mlflow.log_artifact(str(file), "rejects")
    # On the Dask engine, a calibration larger than its sample is counted from the sample.
    listed = "" if len(typos) == count else f" ({len(typos)} of them, those examined one by one)"
    say(
        f"{count} sales priced {np.exp(steps.TYPO_LOG):.1f}x or more away from what the others "
        "say such an account sells for (an extra or a missing zero is 10x) were taken for price "
        f"typos: not learned from; listed{listed} in {file}"
    )
    return file


def _register(client, settings, valuer: Valuer, say) -> tuple[str, Path]:
    """The bundle logged as an MLflow pyfunc and registered, its fingerprint on the version, and
    a verified copy in the local bundle cache: the version and that copy."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        bundle = valuer.save(Path(scratch) / "bundle")
        fingerprint = bundles.fingerprint(bundle)
        mlflow.log_artifact(str(bundle / "point.txt"), "lightgbm")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_FILE),
            artifacts={"bundle": str(bundle)},
            code_paths=[str(MODEL_FILE.parent)],
            signature=_signature(),
            input_example=INPUT_EXAMPLE,
            pip_requirements=_requirements(),
            registered_model_name=settings.model_name,
        )
        version = str(info.registered_model_version)
        # Recorded in the registry's database, apart from the artifacts it vouches for:
        # loaders check every bundle against it before reading a byte of the model.
        for tag, value in fingerprint.items():
            client.set_model_version_tag(settings.model_name, version, tag, value)
        local = registry.bundle_dir(settings, version)
        # A store made anew numbers from 1 again: an old cache under this number must go whole
        # (a leftover file would fail the check).
        shutil.rmtree(local, ignore_errors=True)
        shutil.rmtree(compiled_cache.root(local), ignore_errors=True)
        shutil.copytree(bundle, local)
    say(f"registered {settings.model_name} version {version}")
    if settings.compiled_trees:
        # Compiled now, once, so that the first quote and batch of this version need not.
        valuer.version = version
        registry.attach_compiled(settings, valuer, local, {})
        say("compiled its trees for this machine" if valuer.compiled else "not compiled here")
    return version, local


def _gate(client, settings, version: str, candidate: dict, split, card: dict, say):
    """The promotion gate: the candidate against the champion on the same holdout; the decision
    on record, and the alias moved when it says so."""
    try:
        decision = steps.decide(candidate, champion_errors(settings, split, card))
    except bundles.BundleRejected as error:
        # An unverifiable champion cannot be measured, nor silently replaced: a person decides.
        decision = steps.Decision(
            promote=False,
            reasons=[f"the champion cannot be compared ({error}); promote by hand if wanted"],
            candidate=candidate,
            champion=None,
        )
    record_decision(client, settings, version, decision)
    if decision.promote:
        client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    verb = "is now" if decision.promote else "is not"
    say(f"version {version} {verb} @{settings.model_alias}: " + "; ".join(decision.reasons))
    if not decision.promote and registry.registered_version(settings) is None:
        say(
            "nothing is served; to serve this version anyway: "
            f"valuation promote {version} --reason WHY"
        )
    return decision


def _signature():
    """Decided, not inferred: each feature accepts a typed value or any marketplace spelling."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    # A field with a default may be left out (the pyfunc reads it with its default).
    inputs = Schema([ColSpec(AnyType(), f.name, required=f.default is None) for f in FEATURES])
    outputs = Schema(
        [
            ColSpec("double", "price_estimate"),
            ColSpec("double", "price_low"),
            ColSpec("double", "price_high"),
            ColSpec(AnyType(), "known_category"),
            ColSpec(AnyType(), "error"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def _requirements() -> list[str]:
    import mlflow

    return [
        f"mlflow=={mlflow.__version__}",
        f"lightgbm=={lgb.__version__}",
        f"pandas=={pd.__version__}",
        f"numpy=={np.__version__}",
    ]
