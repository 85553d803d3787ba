"""Run a job of the definitions on the local Dagster instance, as ``dagster dev`` would, and print its outcome."""

import argparse
import logging
import sys

import dagster as dg

from labeling_assets import env
from labeling_assets.cli.common import use_local_instance
from labeling_assets.core.display import clipped
from labeling_assets.core.errors import SetupError, hide_url_passwords, one_line


def check_resources(job: dg.JobDefinition) -> None:
    """Every resource the job uses is configured and answers, before a run is launched: a missing database,
    a wrong port, URL or token is one line on stderr (``SetupError``) instead of a failed run's trace."""
    from labeling_assets.definitions import build_resources

    needed: set[str] = set()
    for node in job.graph.iterate_node_defs():
        needed |= set(getattr(node, "required_resource_keys", ()) or ())
    resources = build_resources()
    for key in sorted(needed & resources.keys()):
        check = getattr(resources[key], "check", None)  # store, image source, Label Studio, MLflow
        if callable(check):
            check()


def run_job(job_name: str, **kwargs: object) -> int:
    """Execute a job of the definitions on the local Dagster instance; print its materializations (0 = success)."""
    use_local_instance()
    from labeling_assets.definitions import defs  # every asset module: loaded for a run, not for --help

    job = defs.resolve_job_def(job_name)
    check_resources(job)
    # Progress at INFO on the console; the step-by-step DEBUG events stay in the UI's run log.
    run_config = dict(kwargs.pop("run_config", None) or {})  # type: ignore[call-overload]
    run_config.setdefault("loggers", {"console": {"config": {"log_level": "INFO"}}})
    with dg.DagsterInstance.get() as instance:
        # A killed earlier run would hold its pool slot (labelstudio_sync, gpu) and this run would wait for
        # it forever when no daemon runs: mark such runs failed and free their slots first.
        from labeling_assets.local.run_launcher import reap_dead_runs

        for run_id in reap_dead_runs(instance):
            print(f"marked run {run_id[:8]} failed: its process is gone", file=sys.stderr)
        result = job.with_logger_defs({"console": compact_console_logger}).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config, **kwargs  # type: ignore[arg-type]
        )
        return print_outcome(result)


def print_outcome(result: dg.ExecuteInProcessResult) -> int:
    """Print the run's materializations (without thumbnails or long tables) and checks; 0 = success."""
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        print(f"\n== {mat.asset_key.to_user_string()} (run {result.run_id[:8]})")
        for key, value in mat.metadata.items():
            text = getattr(value, "value", value)
            if isinstance(text, str) and ("data:image" in text or len(text) > 400):
                continue  # thumbnails and long tables are for the UI
            print(f"  {key}: {clipped(str(text), 400)}")  # a JSON value can hold what a labeler sent
    for evaluation in result.get_asset_check_evaluations():
        # WARN checks flag something for a person to look at (a weak labeler); ERROR checks block.
        warn = evaluation.severity == dg.AssetCheckSeverity.WARN
        status = "passed" if evaluation.passed else ("warning" if warn else "FAILED")
        where = f" [{evaluation.partition}]" if getattr(evaluation, "partition", None) else ""
        print(f"  check {evaluation.check_name}{where}: {status}")
    if not result.success:
        failures = result.get_step_failure_events()
        for event in failures:  # the cause in one line per step; its trace is in the UI (and with --debug above)
            cause = hide_url_passwords(failure_cause(event) or "see the Dagster UI")
            print(f"{event.step_key} failed: {one_line(cause, 300)}", file=sys.stderr)
        unexplained = [event for event in failures if not explained(event)]
        hint = "; --debug shows the traces here" if unexplained and not env.debug() else ""
        print(f"Run {result.run_id[:8]} failed: its log is in the Dagster UI (`dagster dev`){hint}.", file=sys.stderr)
        return max([exit_code(event) for event in failures] or [1])
    return 0


def error_line(error: object) -> str:
    """A Dagster error (``SerializableErrorInfo``) as one line: its innermost cause, the user's exception
    under Dagster's wrappers ("NotADirectoryError: [Errno 20] Not a directory: '/data/raw/ab'")."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    return one_line(hide_url_passwords(str(getattr(error, "message", error)).strip()), 300)


def failure_cause(event: dg.DagsterEvent) -> str | None:
    """A step failure's message for a person: a ``dg.Failure``'s description, else a setup error's message
    (raised inside the step, under Dagster's wrapper), else the exception's message."""
    data = event.step_failure_data
    if data is None:
        return None
    if data.user_failure_data is not None and data.user_failure_data.description:
        return str(data.user_failure_data.description)
    error = data.error
    while error is not None:
        if error.cls_name in _setup_error_names():
            prefix, colon, rest = error.message.partition(": ")  # "pkg.module.ClassName: the message"
            return rest if colon and prefix.rsplit(".", 1)[-1] == error.cls_name else error.message
        error = error.cause
    return error_line(data.error) if data.error else None


def exit_code(event: dg.DagsterEvent) -> int:
    """The CLI exit code of a step failure: a setup error's own (2 configuration, 3 unreachable), else 1."""
    data = event.step_failure_data
    error = data.error if data else None
    while error is not None:
        if error.cls_name in _setup_error_names():
            return _setup_error_names()[error.cls_name]
        error = error.cause
    return 1


def _setup_error_names() -> dict[str, int]:
    """Every SetupError class (resources' included, once imported) by name -> its exit code."""
    return {cls.__name__: cls.exit_code for cls in _setup_error_classes()}


def explained(event: object) -> bool:
    """A step failure the summary explains in one line: a ``dg.Failure`` (a message for a person) or a setup
    error. Anything else is unexpected and keeps its trace on the console."""
    if not isinstance(event, dg.DagsterEvent) or event.event_type != dg.DagsterEventType.STEP_FAILURE:
        return False
    data = event.step_failure_data
    return data is not None and (data.user_failure_data is not None or exit_code(event) != 1)


# Runs with an explained step failure: Dagster builds a new console logger for the run's own events, so the
# state is kept per run id, not per logger.
_EXPLAINED_RUNS: set[str] = set()


class _OneLineFailures(logging.Filter):
    """Leaves a step failure to the summary (print_outcome): its trace, the steps it kept from running and the
    run's failure stay in the UI's run log, not on the console. Any other event with an error (a step that
    will be retried) is one line. With ``--debug``, every event keeps its trace here (a setup error's too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if env.debug():  # --debug / LABELING_ASSETS_DEBUG=1: every trace on the console
            return True
        event = getattr(record, "dagster_event", None)
        run_id = str((getattr(record, "dagster_meta", None) or {}).get("run_id"))
        is_step_failure = isinstance(event, dg.DagsterEvent) and event.event_type == dg.DagsterEventType.STEP_FAILURE
        if explained(event) or is_step_failure:
            _EXPLAINED_RUNS.add(run_id)
            return False
        error = getattr(getattr(event, "event_specific_data", None), "error", None)
        if error is not None:
            first = record.getMessage().split("\n", 1)[0].rstrip()
            record.msg, record.args = f"{first} {error_line(error)}", ()
        if run_id not in _EXPLAINED_RUNS or record.levelno < logging.ERROR:
            return True
        is_run_failure = isinstance(event, dg.DagsterEvent) and event.event_type == dg.DagsterEventType.RUN_FAILURE
        return not (is_run_failure or "Not executing." in record.getMessage())


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="The console logger of CLI runs: Dagster's format, explained failures left to the summary.",
)
def compact_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger(config["name"], level=str(config["log_level"]).upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    handler.addFilter(_OneLineFailures())
    logger.addHandler(handler)
    return logger


def _setup_error_classes() -> list[type[SetupError]]:
    found: list[type[SetupError]] = []
    pending: list[type[SetupError]] = [SetupError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def cmd_ingest(args: argparse.Namespace) -> int:
    """Materialize raw_images (and its checks) on the local Dagster instance and print what ingest did."""
    return run_job("ingest_job")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "ingest",
        help="ingest the image source (default: bundled demo digits) into the store",
        description="Scan the image source and ingest new or changed files into the content-addressed raw store "
        "(a run of ingest_job on the local Dagster instance, with its checks): each file is hashed and "
        "decode-checked, unreadable or oversized ones are quarantined with a reason, a file that left the source "
        "retires its item. The source is $LABELING_ASSETS_IMAGE_SOURCE (a folder or an fsspec URI), else the "
        "bundled demo digits rendered under <data>/demo/digits; a gold.csv (filename,label) in it marks hidden "
        "gold items. Re-running it is safe: unchanged files are skipped. Prints what the run found.",
    )
    p.set_defaults(func=cmd_ingest)
