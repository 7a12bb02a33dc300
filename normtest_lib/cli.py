"""The ``normtest`` command line: one sub-command per way of working.

    normtest stats DATASET --root DIR [--json] [--out FOLDER]
    normtest train --out DIR [-f PARAMS.yml] [--set key=value ...]
    normtest pretrain --out DIR [-f PARAMS.yml] [--set key=value ...]
    normtest run PARAMS.yml --profile P [--executor local|dask] [--workers N] [--dry-run] [--rerun-stale]
    normtest verify RUN_DIR [--epochs N] [--rebuild-source]
    normtest verify --sample K RESULTS_ROOT [--no-record]
    normtest predict --checkpoint RUN_DIR --input CSV_OR_FOLDER --output FILE [--labels FILE] [--json FILE]
    normtest book [--run-smoke]
    normtest datasets | models

Errors caused by input (bad parameters, missing files) print one message and
exit with status 2, without a traceback. ``verify`` exits 0 when the run verifies, 1 when
it differs, 3 for a run made before fingerprints existed, 4 when only its source run could
be verified, 5 when it cannot be recomputed here (normtest_lib/verify/run.py); with
``--sample``, 1 when any fingerprinted run differs, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import NormtestError


def _stats_command(args: argparse.Namespace) -> int:
    from .stats.channel import format_triplet
    from .stats.record import compute_record, write_record

    # `pretrain` means ImageNet's statistics here: the source of torchvision's checkpoints.
    record = compute_record(
        args.dataset, args.root, name=args.name, published_as=args.published, split=args.split,
        max_images=args.max_images, seed=args.seed, download=args.download,
    )
    written = write_record(record, args.out) if args.out else None
    if args.json:
        print(json.dumps({
            "dataset": args.dataset,
            "split": args.split,
            "n_images": record.n_images,
            "mean": list(record.stats.mean),
            "std": list(record.stats.std),
            "normalized": {name: {"mean": list(s.mean), "std": list(s.std)} for name, s in record.table1.items()},
        }))
    else:
        height, width = record.image_size
        print(f"{args.dataset} ({args.split}, {record.n_images} images, {height}x{width})")
        print(f"  mean {format_triplet(record.stats.mean)}  std {format_triplet(record.stats.std)}")
        print("  after each input normalization setting (pretrain = ImageNet statistics):")
        for name, s in record.table1.items():
            print(f"    {name:9s} mean {format_triplet(s.mean, 3)}  std {format_triplet(s.std, 3)}")
    if written is not None:
        print(f"wrote {written} ({record.seconds:.0f} s)", file=sys.stderr)
    return 0


def _load_params(files: Sequence[str], overrides: Sequence[str]) -> dict[str, Any]:
    import yaml

    from .config import parse_override
    from .errors import ConfigError
    from .io import read_yaml

    params: dict[str, Any] = {}
    for file in files:
        if not Path(file).is_file():
            raise ConfigError(f"parameter file {file} does not exist")
        try:
            loaded = read_yaml(file) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"parameter file {file} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"parameter file {file} must hold a mapping of key: value")
        params.update(loaded)
    params.update(dict(parse_override(text) for text in overrides))
    return params


def _train_command(args: argparse.Namespace) -> int:
    from .config import make_config
    from .engine import train

    config = make_config(_load_params(args.file, args.set))
    summary = train(config, Path(args.out), progress=None if args.progress is None else args.progress)
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] in ("complete", "diverged") else 1


def _pretrain_command(args: argparse.Namespace) -> int:
    from .api import pretrain
    from .checkpoint import load_checkpoint

    checkpoint = pretrain(args.out, progress=args.progress, **_load_params(args.file, args.set))
    source = load_checkpoint(checkpoint)["source"]
    print(json.dumps({"checkpoint": str(checkpoint), "source": source}, indent=2, default=str))
    print(f"fine-tune from it with: --set pretrained={checkpoint} --set input_norm=pretrain", file=sys.stderr)
    return 0


def _run_command(args: argparse.Namespace) -> int:
    from .grid.runner import run_grid

    from .errors import ConfigError

    gpus = [g.strip() for g in args.gpus.split(",")] if args.gpus else None
    if gpus is not None and not all(g.isdigit() for g in gpus):
        raise ConfigError(f"--gpus expects comma-separated GPU indices such as 0,1; got {args.gpus!r}")
    report = run_grid(
        args.grid,
        args.profile,
        executor=args.executor,
        workers=args.workers,
        runs_root=args.runs_root,
        dry_run=args.dry_run,
        scheduler=args.scheduler,
        gpus=gpus,
        runs_per_gpu=args.runs_per_gpu,
        rerun_stale=args.rerun_stale,
    )
    return report.exit_code


def _verify_command(args: argparse.Namespace) -> int:
    from .engine.fingerprint import RELATIVE_TOLERANCE
    from .verify.run import verify_run
    from .verify.sample import verify_sample

    def log(line: str) -> None:
        print(line, flush=True)

    if args.sample is not None:
        count = None if args.sample == SAMPLE_ALL else args.sample  # verify_sample's None: one run of every variant
        report = verify_sample(args.path, count, record=not args.no_record, root_dir=args.root_dir, log=log)
        return report.exit_code
    outcome = verify_run(
        args.path,
        root_dir=args.root_dir,
        epochs=args.epochs,
        rebuild_source=args.rebuild_source,
        tolerance=args.tolerance if args.tolerance is not None else RELATIVE_TOLERANCE,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print("\n".join(outcome.report_lines()))
    return outcome.exit_code


SAMPLE_ALL = "all"


def _sample_size(text: str) -> int | str:
    """--sample K: a positive count of runs per result set, or ``all`` (kept as the word: None means no --sample)."""
    if text == SAMPLE_ALL:
        return SAMPLE_ALL
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of runs or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected at least 1 run per result set")
    return value


def _book_command(args: argparse.Namespace) -> int:
    from .report.book import build_book

    index = build_book(run_smoke=args.run_smoke, runs_root=args.runs_root, results_root=args.results_root)
    print(f"book: {index}")
    return 0


def _predict_command(args: argparse.Namespace) -> int:
    from .predict import run_predict

    predictions, metrics = run_predict(
        args.checkpoint,
        args.input,
        args.output,
        labels_path=args.labels,
        json_path=args.json,
        which=args.which,
        device=args.device,
        batch_size=args.batch_size,
    )
    print(f"predicted {len(predictions)} images into {args.output}")
    if metrics is not None:
        print(
            f"accuracy {metrics['accuracy']:.4f}  micro-F1 {metrics['micro_f1']:.4f}  "
            f"macro-F1 {metrics['macro_f1']:.4f}"
        )
    return 0


def _datasets_command(args: argparse.Namespace) -> int:
    from .data import dataset_names, get_spec
    from .data.photometric import describe, shift_names, shifted_name

    for name in dataset_names():
        spec = get_spec(name)
        print(f"{name:24s} {'needs --root' if spec.needs_root else 'built in':13s} {spec.description}")
    # One line per shift, not one per data set and shift: every name above takes each.
    for shift in shift_names():
        print(f"{shifted_name('<data set>', shift):24s} {'as its base':13s} "
              f"any data set above with the {shift!r} shift: {describe(shift)}")
    return 0


def _models_command(args: argparse.Namespace) -> int:
    from .models import model_names

    print("\n".join(model_names()))
    return 0


def _add_run_arguments(parser: argparse.ArgumentParser, out_help: str) -> None:
    """The flags of one run: its folder and its parameters (files, then overrides)."""
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("-f", "--file", action="append", default=[], help="YAML file of parameters (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="normtest", description="Normalization experiments and their book.")
    commands = parser.add_subparsers(dest="command", required=True)

    stats = commands.add_parser("stats", help="channel statistics of a data set, raw and after each input setting")
    stats.add_argument("dataset")
    stats.add_argument("--root", default=None, help="folder holding the data set's files")
    stats.add_argument("--split", default="train", choices=["train", "test"])
    stats.add_argument("--download", action="store_true", help="allow downloading the official files")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument(
        "--out", metavar="FOLDER", help="also write the record FOLDER/<name>.json (the book reads results/dataset_statistics/local/)"
    )
    stats.add_argument("--name", help="the record's name (default: the data set's; an imagefolder's folder name, +shift for a shifted one: cifar10-jpeg+dim)")
    stats.add_argument("--published", metavar="DATASET", help="published statistics to compare with (e.g. cifar10)")
    stats.add_argument("--max-images", type=int, default=None, help="a seeded sample of this many images (default: all)")
    stats.add_argument("--seed", type=int, default=0, help="the sample's seed")
    stats.set_defaults(handler=_stats_command)

    train = commands.add_parser("train", help="train one run into a folder (resumes if interrupted)")
    _add_run_arguments(train, "the run's folder")
    train.set_defaults(handler=_train_command)

    pretrain = commands.add_parser("pretrain", help="train a source network whose checkpoint study 1 fine-tunes from")
    _add_run_arguments(pretrain, "the run's folder; its checkpoint.pt is the result")
    pretrain.set_defaults(handler=_pretrain_command)

    run = commands.add_parser("run", help="run a grid of experiments through papermill")
    run.add_argument("grid", help="params/<study>.yml")
    run.add_argument("--profile", required=True)
    run.add_argument("--executor", choices=["local", "dask"], default="local")
    run.add_argument("--workers", type=int, default=None)
    run.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    run.add_argument(
        "--gpus", default=None, help="comma-separated positions among the visible GPUs, in CUDA_VISIBLE_DEVICES order (default: all visible)"
    )
    run.add_argument("--runs-per-gpu", type=int, default=1)
    run.add_argument("--runs-root", default="runs")
    run.add_argument("--dry-run", action="store_true")
    run.add_argument(
        "--rerun-stale", action="store_true",
        help="also rerun finished runs whose fingerprint no longer verifies, their old record kept in previous/",
    )  # fmt: skip
    run.set_defaults(handler=_run_command)

    verify = commands.add_parser(
        "verify", help="recompute a run's fingerprint with the current code and compare it with the recorded one"
    )
    verify.add_argument("path", metavar="RUN_DIR|RESULTS_ROOT", help="a run folder, or with --sample a results root")
    verify.add_argument(
        "--sample", metavar="K", type=_sample_size, default=None,
        help="verify K runs of every <study>/<profile> under the root, one per variant ('all': one of every variant)",
    )  # fmt: skip
    verify.add_argument("--epochs", metavar="N", type=int, default=0,
                        help="also rerun N whole epochs and expect identical history rows (same processor only)")
    verify.add_argument("--rebuild-source", action="store_true",
                        help="retrain the run's pretraining source when its weights are absent (costs its training time)")
    verify.add_argument("--root-dir", default=".", metavar="DIR",
                        help="where the runs' relative paths (data_root, pretrained) are found (default: here)")
    verify.add_argument("--no-record", action="store_true",
                        help="with --sample: do not write <study>/<profile>/verification.json")
    verify.add_argument("--tolerance", type=float, default=None, help="relative tolerance (default: the measured one)")
    verify.set_defaults(handler=_verify_command)

    book = commands.add_parser("book", help="execute the report notebooks and build the HTML book")
    book.add_argument("--run-smoke", action="store_true", help="first run the smoke profile of every grid")
    book.add_argument("--runs-root", default="runs")
    book.add_argument("--results-root", default="results")
    book.set_defaults(handler=_book_command)

    predict = commands.add_parser("predict", help="predict the class of each image with a run's best weights")
    predict.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="the run folder (holding best.pt)")
    predict.add_argument(
        "--input", required=True, metavar="FILE_OR_FOLDER", help="CSV of 3,072 values 0..255 a row, or folder <class>/<image>"
    )
    predict.add_argument("--output", required=True, metavar="FILE", help="file for one predicted class index per line")
    predict.add_argument("--labels", metavar="FILE", help="one class index per line (overrides an image folder's classes)")
    predict.add_argument("--json", metavar="FILE", help="write n, accuracy, micro_f1, macro_f1 (needs labels)")
    predict.add_argument("--which", choices=["best", "last"], default="best", help="best.pt or the last checkpoint.pt")
    predict.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N or mps")
    predict.add_argument("--batch-size", type=int, default=512)
    predict.set_defaults(handler=_predict_command)

    commands.add_parser("datasets", help="list the data sets").set_defaults(handler=_datasets_command)
    commands.add_parser("models", help="list the models").set_defaults(handler=_models_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except NormtestError as exc:
        print(f"normtest: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
