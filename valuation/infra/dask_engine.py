"""Pricing a catalogue on a Dask cluster, partition by partition, with the same chunk function
(`pricing.price_chunk`) and model as the single-machine path, so the prices are the same."""

from __future__ import annotations

from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path

from valuation.loading import (
    SUFFIXES,
    WORKBOOKS,
    ExportError,
    canonical_headers,
    csv_layout,
    rejects_path,
)
from valuation.pricing import BatchOutcome, price_chunk
from valuation.valuer import DEFAULT_LEVEL, Valuer

LOCAL_WORKERS = 2


@contextmanager
def cluster(scheduler: str | None = None):
    """A client of the cluster at `scheduler`, or of a local cluster of LOCAL_WORKERS processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=LOCAL_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: several clusters may run at once
            silence_logs=40,
        ) as local,
        Client(local) as client,
    ):
        yield client


def read_partitions(source: str | Path, blocksize: str = "64MB"):
    """The export as a Dask DataFrame of raw text (CSV) or typed (Parquet) partitions."""
    import dask.dataframe as dd

    source = Path(source)
    if source.suffix.lower() not in SUFFIXES:
        hint = (
            "; Excel workbooks are read by the local engine"
            if source.suffix.lower() in WORKBOOKS
            else ""
        )
        raise ExportError(
            f"{source}: unsupported file type {source.suffix!r}; the Dask engine reads CSV or "
            f"Parquet{hint}"
        )
    if not source.exists():
        raise ExportError(f"{source}: no such file")
    if source.suffix.lower() == ".parquet":
        return dd.read_parquet(source), 1
    layout = csv_layout(source)  # a title above the table skipped, as on one machine
    frame = dd.read_csv(
        source,
        dtype=str,
        keep_default_na=False,
        encoding=layout.encoding,
        skiprows=layout.above,
        blocksize=blocksize,
    )
    return frame, layout.line + 1


def partition_starts(frame, first_line: int, source: str | Path) -> tuple[list[int], list[int]]:
    """Each partition's length and the line of its first row, counted one line a row. Dask cuts
    a CSV at line breaks, so a quoted value holding one can be cut in two: pandas then finds a
    value still open at a partition's end, which is refused here with what to do instead."""
    import pandas as pd

    try:
        lengths = frame.map_partitions(len).compute().tolist()
    except pd.errors.ParserError as error:
        raise ExportError(
            f"{source}: not readable in partitions ({error}): a quoted value holding a line "
            "break was cut where Dask splits the file. Price it without --engine dask, or "
            "write it as Parquet first (valuation batch reads both)"
        ) from error
    return lengths, [first_line + sum(lengths[:i]) for i in range(len(lengths))]


def price_file_dask(
    valuer: Valuer,
    source: str | Path,
    output: str | Path,
    client,
    level: float = DEFAULT_LEVEL,
    as_of=None,
    blocksize: str = "64MB",
) -> BatchOutcome:
    """Prices every partition on the cluster; writes `output` (a CSV file, or a Parquet folder of
    part files as Dask writes it) and `<output>.rejects.csv`. Line numbers are the file's own."""
    import dask
    import dask.dataframe as dd

    valuer.level_as_of([], as_of)  # a date outside the model's market: refused before any work
    frame, first_line = read_partitions(source, blocksize)
    canonical_headers(frame.columns, require_price=False)  # fail early, on the client
    lengths, starts = partition_starts(frame, first_line, source)
    shared = client.scatter(valuer, broadcast=True)
    # Each partition is priced once on the cluster; its two halves (priced, rejects) stay there.
    done = client.compute(
        [
            dask.delayed(price_chunk)(shared, part, start, level, as_of)
            for part, start in zip(frame.to_delayed(), starts, strict=True)
        ]
    )
    priced_parts = [client.submit(itemgetter(0), future) for future in done]
    rejects_parts = [client.submit(itemgetter(1), future) for future in done]
    priced_meta, rejects_meta = price_chunk(valuer, frame._meta, first_line, level, as_of)
    priced = dd.from_delayed(priced_parts, meta=priced_meta, verify_meta=False)
    rejects = dd.from_delayed(rejects_parts, meta=rejects_meta, verify_meta=False)

    output = Path(output)
    rejected_path = rejects_path(output)
    if output.suffix.lower() == ".parquet":
        priced.to_parquet(output, write_index=False)
    else:
        priced.to_csv(output, single_file=True, index=False)
    priced_rows = sum(client.gather([client.submit(len, part) for part in priced_parts]))
    rejected_rows = sum(client.gather([client.submit(len, part) for part in rejects_parts]))
    if rejected_rows:
        rejects.to_csv(rejected_path, single_file=True, index=False)
    else:
        rejected_path.unlink(missing_ok=True)
    return BatchOutcome(
        rows=sum(lengths),
        priced=priced_rows,
        rejected=rejected_rows,
        output=output,
        rejects=rejected_path if rejected_rows else None,
    )
