"""`valuation`: generate simulated sales, train, quote one listing, price a file, serve the API.

Every failure a user can cause (a bad path, an unreadable value, no model yet) ends with one line
on stderr and a non-zero exit, never a traceback. Heavy imports happen inside the commands, so
`--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from valuation.schema import FEATURES

EXIT_USAGE = 2
EXIT_FAILED = 1


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="valuation", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    generate = commands.add_parser("generate", help="write simulated marketplace sales")
    generate.add_argument("--rows", type=_positive_int, default=5000)
    generate.add_argument("--out", type=Path, required=True, help="a .csv or .parquet path")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--bad-share", type=float, default=0.005, help="share of unreadable rows")
    generate.add_argument("--truth", action="store_true", help="add the true price quantiles")

    train = commands.add_parser("train", help="train on past sales, track and register in MLflow")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="CSV, Excel (.xlsx, .xls) or Parquet export of sales; a folder of them, or several "
        "files, read as one export",
    )
    source.add_argument(
        "--from-records",
        action="store_true",
        help="the sales reported to the service (POST /v1/sales), snapshot to <home>/records/",
    )
    train.add_argument("--trials", type=_positive_int, help="hyperparameter search trials")
    train.add_argument("--max-reject-share", type=float, help="refuse above this share (0.05)")
    train.add_argument(
        "--if-no-champion", action="store_true", help="do nothing when a champion is registered"
    )
    _engine_arguments(train)

    quote = commands.add_parser("quote", help="value one listing with the champion model")
    for field in FEATURES:
        quote.add_argument(
            f"--{field.name.replace('_', '-')}",
            required=field.default is None,
            help=field.description,
        )
    quote.add_argument("--level", type=_level, default=0.8, help="range level, 0.5 to 0.95")
    quote.add_argument("--explain", action="store_true", help="show each feature's contribution")
    quote.add_argument("--comparables", type=int, default=0, metavar="K", help="show K past sales")
    quote.add_argument("--json", action="store_true", help="print the valuation as JSON")
    quote.add_argument(
        "--advice", action="store_true", help="what a seller could change, and the price after it"
    )
    quote.add_argument("--as-of", type=_date, help=AS_OF_HELP)

    batch = commands.add_parser(
        "batch", help="price every listing of a CSV, Excel (.xlsx, .xls) or Parquet file"
    )
    batch.add_argument("--input", type=Path, required=True)
    batch.add_argument("--output", type=Path, required=True, help="a .csv or .parquet path")
    batch.add_argument("--level", type=_level, default=0.8, help="range level, 0.5 to 0.95")
    batch.add_argument("--as-of", type=_date, help=AS_OF_HELP)
    batch.add_argument(
        "--chunk-rows", type=_positive_int, default=200_000, help="rows read at a time (memory)"
    )
    batch.add_argument(
        "--asking-price-column",
        metavar="COL",
        help="rate each row's asking price in COL: adds asking_percentile and deal_rating",
    )
    _engine_arguments(batch)

    promote = commands.add_parser(
        "promote", help="make a registered version the champion, overriding the gate"
    )
    promote.add_argument("version", help="the registered model version, e.g. 3")
    promote.add_argument("--reason", required=True, help="why: recorded in MLflow")

    report = commands.add_parser("report", help="write a model's HTML evaluation report")
    report.add_argument("--version", help="a registered version (default: the champion)")
    report.add_argument("--out", type=Path, default=Path("report"), help="folder (./report)")

    serve = commands.add_parser("serve", help="serve the prediction API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_positive_int, default=1)

    keys = commands.add_parser("keys", help="API keys: make, list, revoke (stored hashed)")
    key_commands = keys.add_subparsers(dest="action", required=True, parser_class=Parser)
    made = key_commands.add_parser("create", help="make a key; printed once, on the last line")
    made.add_argument("--role", required=True, choices=("quote", "marketplace", "admin"))
    made.add_argument("--name", required=True, help="who holds it, e.g. the marketplace's name")
    key_commands.add_parser("list", help="every key's name, role and dates (never the key)")
    revoked = key_commands.add_parser("revoke", help="a key stops working within seconds")
    revoked.add_argument("name")

    record = commands.add_parser("record", help="the record's database")
    record_commands = record.add_subparsers(dest="action", required=True, parser_class=Parser)
    record_commands.add_parser("upgrade", help="bring it to this release's tables, in place")

    sales = commands.add_parser("sales", help="reported sales screened as suspect")
    sale_commands = sales.add_subparsers(dest="action", required=True, parser_class=Parser)
    sale_commands.add_parser("suspects", help="list the suspect sales waiting for a decision")
    for action, what in (("confirm", "train on it from now on"), ("reject", "never train on it")):
        decided = sale_commands.add_parser(action, help=what)
        decided.add_argument("sale_id", type=_positive_int)

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the boundary: known failures become one line
        if not isinstance(error, _user_errors()):
            raise
        print(f"valuation {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED


AS_OF_HELP = (
    "value as of this date (YYYY-MM-DD), within the model's data; default: its market date "
    "(the latest sale it learned from)"
)


def _user_errors() -> tuple[type[Exception], ...]:
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    from training.snapshot import NoSalesOnRecord
    from training.steps import TooManyRejects
    from valuation.listing import ListingError
    from valuation.loading import ExportError
    from valuation.market import DateOutsideMarket
    from valuation.storage.bundles import BundleRejected
    from valuation.storage.keys import KeyProblem
    from valuation.storage.migrations import RecordOutdated
    from valuation.storage.registry import NoModel

    return (
        ExportError,
        ListingError,
        TooManyRejects,
        NoModel,
        NoSalesOnRecord,
        BundleRejected,
        DateOutsideMarket,
        OSError,
        MlflowException,
        OperationalError,  # the record's database is unreachable
        KeyProblem,
        RecordOutdated,
    )


def _engine_arguments(command) -> None:
    command.add_argument(
        "--engine", choices=("local", "dask"), default="local", help="one machine, or Dask"
    )
    command.add_argument(
        "--scheduler", help="a Dask scheduler address (default: start a local cluster)"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-03-01: {text}") from None


def _level(text: str) -> float:
    from valuation.valuer import check_level

    try:
        return check_level(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _settings():
    from valuation.infra.settings import get_settings

    return get_settings()


def run_generate(args) -> int:
    from data.simulator import generate
    from valuation.loading import SUFFIXES, ExportError, write_table

    if args.out.suffix.lower() not in SUFFIXES:
        raise ExportError(f"{args.out}: write .csv or .parquet")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_table(generate(args.rows, args.seed, args.bad_share, args.truth), args.out)
    print(f"wrote {args.rows} simulated sales to {args.out} (simulated, not market data)")
    return 0


def run_train(args) -> int:
    from training.pipeline import train
    from training.snapshot import snapshot_records
    from valuation.storage.registry import registered_version

    settings = _settings()
    if args.if_no_champion and registered_version(settings):
        print(f"{settings.model_name}@{settings.model_alias} is registered: not training")
        return 0
    if args.max_reject_share is not None:
        settings = settings.model_copy(update={"max_reject_share": args.max_reject_share})
    data = args.data
    if args.from_records:
        data = snapshot_records(settings)
        print(f"training on the sales on record, snapshot in {data}")
    outcome = train(data, settings, args.trials, print, args.engine, args.scheduler)
    print(f"\nholdout ({outcome.split_by} split):")
    print(f"{'':22}{'MdAPE':>8}{'MAPE':>8}{'RMSLE':>8}{'<=10%':>8}{'<=20%':>8}")
    for who, m in outcome.metrics.items():
        print(
            f"{who:22}{m['mdape']:8.1%}{m['mape']:8.1%}{m['rmsle']:8.3f}"
            f"{m['within_10pct']:8.1%}{m['within_20pct']:8.1%}"
        )
    coverage = outcome.metrics["model"]["interval_coverage"]
    print(f"80% range held {coverage:.1%} of holdout sales")
    print(f"run {outcome.run_id}; model version {outcome.model_version}; bundle {outcome.bundle}")
    if outcome.decision.warning:
        print(f"warning: version {outcome.model_version}: {outcome.decision.warning}")
    return 0


def run_quote(args) -> int:
    from valuation.listing import Listing
    from valuation.quoting import full_quote
    from valuation.storage.registry import load_valuer

    given = {field.name: getattr(args, field.name) for field in FEATURES}
    listing = Listing.parse({name: value for name, value in given.items() if value is not None})
    valuer = load_valuer(_settings())
    # The answer's shape is the API's (`valuation.quoting`): --json prints it, the text reads it.
    _, answer = full_quote(
        valuer, listing, None, args.level, args.explain, args.comparables, args.as_of, args.advice
    )
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, default=str))
        return 0
    print(f"estimate  ¥{answer['price_estimate']:,.0f}")
    print(
        f"range     ¥{answer['price_low']:,.0f} - ¥{answer['price_high']:,.0f} "
        f"({answer['interval']:.0%} of sales)"
    )
    print(f"model     version {answer['model']['version']}")
    if answer["as_of"]:
        print(f"as of     {answer['as_of']} (market date {answer['market_date']})")
    for note in answer["notes"]:
        print(f"note      {note}")
    if "reasons" in answer:
        print(f"\nreference price          ¥{answer['reasons']['reference_price']:>10,.0f}")
        for step in answer["reasons"]["steps"]:
            print(
                f"{step['feature']:16}{str(step['value']):>9} {step['cny']:>+11,.0f}  "
                f"({step['percent']:+.1f}%)"
            )
        print(f"{'estimate':25}¥{answer['price_estimate']:>10,.0f}")
    if answer.get("advice"):
        print("\nwhat a seller could change")
        for entry in answer["advice"]:
            print(
                f"  {entry['feature']} -> {entry['to']}: ¥{entry['price_estimate']:,.0f} "
                f"({entry['change']:+,.0f})"
            )
    if answer.get("comparables"):
        print("\ncomparable sales")
        for comp in answer["comparables"]:
            features = ", ".join(str(comp[field.name]) for field in FEATURES)
            print(
                f"  ¥{comp['price']:>9,.0f}  {comp['sold_at'] or '':10}  {features}  "
                f"(similarity {comp['similarity']:.2f})"
            )
    return 0


def run_batch(args) -> int:
    from valuation.loading import SUFFIXES, ExportError
    from valuation.pricing import price_file
    from valuation.storage.registry import load_valuer

    if args.output.suffix.lower() not in SUFFIXES:
        raise ExportError(f"{args.output}: write .csv or .parquet")
    valuer = load_valuer(_settings())
    if args.engine == "dask" and args.asking_price_column:
        raise ExportError("--asking-price-column runs with the local engine")
    if args.engine == "dask":
        from valuation.infra.dask_engine import cluster, price_file_dask

        with cluster(args.scheduler) as client:
            outcome = price_file_dask(
                valuer, args.input, args.output, client, args.level, args.as_of
            )
    else:
        outcome = price_file(
            valuer,
            args.input,
            args.output,
            args.level,
            args.chunk_rows,
            args.as_of,
            args.asking_price_column,
        )
    print(f"priced {outcome.priced} of {outcome.rows} listings into {outcome.output}")
    if outcome.rejected:
        print(f"{outcome.rejected} rows could not be read: see {outcome.rejects}")
    return 0


def run_promote(args) -> int:
    from training.promotion import promote

    settings = _settings()
    previous = promote(settings, args.version, args.reason)
    print(
        f"{settings.model_name} version {args.version} is now @{settings.model_alias} "
        f"(was {previous or 'none'}); reason recorded in MLflow"
    )
    return 0


def run_report(args) -> int:
    from training.report import report

    page = report(_settings(), args.out, args.version)
    print(f"wrote {page} (and its figures beside it)")
    return 0


def run_serve(args) -> int:
    import uvicorn

    uvicorn.run("api.main:app", host=args.host, port=args.port, workers=args.workers)
    return 0


def run_keys(args) -> int:
    from valuation.storage import keys
    from valuation.storage.records import Record

    engine = Record(_settings().records).engine
    if args.action == "create":
        key = keys.create(engine, args.name, args.role)
        print(f"key {args.name!r} ({args.role}); shown once, stored only as its hash:")
        print(key)
    elif args.action == "list":
        for key in keys.listed(engine):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            print(f"{key.name}\t{key.role}\tmade {key.created_at:%Y-%m-%d %H:%M}\t{state}")
    else:
        keys.revoke(engine, args.name)
        print(f"revoked {args.name!r}: refused within {keys.REFRESH_SECONDS:g} s by a server")
    return 0


def run_record(args) -> int:
    from valuation.storage import migrations
    from valuation.storage.records import engine_for

    url = _settings().records
    before, after, added = migrations.upgrade(engine_for(url))
    columns = f"; columns added for the schema: {', '.join(added)}" if added else ""
    print(f"record at revision {after} (was {before or 'none'}){columns}")
    return 0


def run_sales(args) -> int:
    from valuation.storage import records

    record = records.Record(_settings().records)
    if args.action == "suspects":
        for sale in record.suspect_sales():
            print(
                f"{sale['id']}\t{sale['listing_id']}\t{sale['price']:,.2f} CNY\t"
                f"sold {sale['sold_at'] or '?'}\treported by {sale['reported_by'] or '?'}"
            )
        return 0
    status = records.CONFIRMED if args.action == "confirm" else records.REJECTED
    if record.decide_sale(args.sale_id, status) is None:
        print(f"valuation sales: error: no suspect sale {args.sale_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"sale {args.sale_id} {status}")
    return 0


COMMANDS = {
    "generate": run_generate,
    "train": run_train,
    "quote": run_quote,
    "batch": run_batch,
    "promote": run_promote,
    "report": run_report,
    "serve": run_serve,
    "keys": run_keys,
    "record": run_record,
    "sales": run_sales,
}

if __name__ == "__main__":
    sys.exit(main())
