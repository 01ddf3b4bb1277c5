"""Run an open question set through ``csv-analyst ask --batch --json`` and report execution accuracy.

The open sets live in ``../shared/bench`` beside the repo (see its README for the question format,
the CLI contract and the scoring rule); the practice sets (``practice-dev``, ``practice-heldout``,
``practice2-dev``, ``practice2-heldout``) live in ``bench/practice`` and ``bench/practice2`` and are
scored like real-dev, or like wtq-dev where a question says so (see their READMEs). The runner uses
the embedded stack (no ``--server``) with a throw-away capsule database, so a benchmark run never
writes to the user's capsule store.

Exit status: 0 whenever the measurement finished, whatever the accuracy; non-zero only when the
runner itself could not run (missing set, unreadable question file, CLI not found).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.qa.planner_usage import PlannerUsage
from bench.qa.scoring import SCORERS, Verdict

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SETS_DIR = REPO_ROOT.parent / "shared" / "bench"
PRACTICE_DIR = REPO_ROOT / "bench"
# Practice sets: name -> (folder under bench/, default scoring rule: that of the open set they imitate).
PRACTICE_SETS = {"practice-dev": ("practice/dev", "real-dev"), "practice-heldout": ("practice/heldout", "real-dev"),
                 "practice2-dev": ("practice2/dev", "real-dev"), "practice2-heldout": ("practice2/heldout", "real-dev")}
SET_NAMES = (*SCORERS, *PRACTICE_SETS)
CLARIFICATION = "CLARIFICATION_NEEDED"


class BenchError(Exception):
    """The runner itself cannot run (as opposed to a question being answered wrongly)."""


@dataclass(frozen=True)
class Question:
    """One line of a set's questions.jsonl, with absolute CSV paths."""

    id: str
    csv: list[str]
    question: str
    category: str
    gold: list[list[Any]]
    order_matters: bool
    dataset: str = ""
    scoring: str = ""
    """The open set whose scoring rule this question follows, when not the set's own (practice sets)."""


@dataclass
class SetReport:
    """The score of one set: totals, per category, per status, and each failure with its reason."""

    name: str
    questions: int = 0
    correct: int = 0
    answered: int = 0
    clarifications: int = 0
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    runner_warnings: list[str] = field(default_factory=list)
    planner_usage: PlannerUsage | None = None

    @property
    def accuracy(self) -> float:
        """Correct answers divided by questions (0 for an empty set)."""
        return self.correct / self.questions if self.questions else 0.0

    @property
    def precision(self) -> float:
        """Correct answers divided by SUCCEEDED answers (1 when nothing was answered)."""
        return self.correct / self.answered if self.answered else 1.0

    def groups(self) -> dict[str, dict[str, int]]:
        """Totals per group of categories, a group being the part before "/" in a category name.

        A set whose categories are written ``group/kind`` (practice2: ``demo/``, ``real/``,
        ``wtq/``) is reported per group too; a set without such names has no groups.
        """
        totals: dict[str, Counter[str]] = {}
        for category, counts in self.categories.items():
            if "/" not in category:
                continue
            group = totals.setdefault(category.split("/", 1)[0], Counter())
            group.update(counts)
        return {name: dict(counts) for name, counts in sorted(totals.items())}

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {
            "set": self.name,
            "questions": self.questions,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "answered": self.answered,
            "precision": round(self.precision, 4),
            "clarifications": self.clarifications,
            "categories": {name: _with_rates(counts) for name, counts in sorted(self.categories.items())},
            "groups": {name: _with_rates(counts) for name, counts in self.groups().items()},
            "statuses": dict(sorted(self.statuses.items())),
            "failures": self.failures,
            "runner_warnings": self.runner_warnings,
            # Of the questions answered (SUCCEEDED), the share answered correctly.
            "precision": round(self.correct / self.statuses["SUCCEEDED"], 4) if self.statuses["SUCCEEDED"] else 0.0,
            **({"planner_usage": self.planner_usage.to_json()} if self.planner_usage else {}),
        }


def _with_rates(counts: dict[str, int]) -> dict[str, Any]:
    """A category's or group's counts with its accuracy and precision added."""
    return {**counts, "accuracy": round(counts["correct"] / counts["questions"], 4),
            "precision": round(_share(counts["correct"], counts["answered"]), 4)}


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def _scoring_rule(name: Any) -> str:
    """A question's own scoring rule: empty (the set's rule) or the name of a known one."""
    if name in (None, ""):
        return ""
    if name not in SCORERS:
        raise KeyError(f"unknown scoring rule {name!r} (known: {', '.join(SCORERS)})")
    return str(name)


def load_questions(set_dir: Path, limit: int | None = None) -> list[Question]:
    """Read a set's questions.jsonl and make each CSV path absolute.

    Args:
        set_dir: The set's folder (holding questions.jsonl and tables/).
        limit: Keep only the first ``limit`` questions when given.

    Returns:
        The questions in file order.

    Raises:
        BenchError: The file is missing or a line is not a valid question.
    """
    path = set_dir / "questions.jsonl"
    if not path.is_file():
        raise BenchError(f"no question file at {path}; pass --sets-dir to point at the shared bench folder")
    questions: list[Question] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(Question(
                id=str(item["id"]),
                csv=[str((set_dir / p).resolve()) for p in item["csv"]],
                question=str(item["question"]),
                category=str(item.get("category") or "uncategorised"),
                gold=[list(row) for row in item["gold"]],
                order_matters=bool(item.get("order_matters", False)),
                dataset=str(item.get("dataset") or ""),
                scoring=_scoring_rule(item.get("scoring")),
            ))
        except (ValueError, KeyError, TypeError) as error:
            raise BenchError(f"{path}:{number}: not a valid question line ({error})") from error
        if limit is not None and len(questions) >= limit:
            break
    return questions


def batch_command(cli: str, batch_file: Path, capsule_db: Path, planner: str = "offline") -> list[str]:
    """The argv that answers one batch file in embedded mode with a throw-away capsule store."""
    return [cli, "ask", "--batch", str(batch_file), "--json", "--capsule-db", str(capsule_db), "--planner", planner]


def batch_line(question: Question) -> dict[str, Any]:
    """The CLI batch line of one question: a registered dataset by id, else its CSV files."""
    if question.dataset:
        return {"id": question.id, "dataset": question.dataset, "question": question.question}
    return {"id": question.id, "csv": question.csv, "question": question.question}


def parse_answers(stdout: str) -> dict[str, dict[str, Any]]:
    """Answer objects by id from the CLI's stdout, ignoring every line that is not one.

    Args:
        stdout: Everything the CLI printed.

    Returns:
        The last answer object seen for each id.
    """
    answers: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("id") is not None:
            answers[str(item["id"])] = item
    return answers


def run_batch(cli: str, questions: Sequence[Question], work_dir: Path, index: int,
              timeout: float, planner: str = "offline") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Answer one batch through the CLI.

    Args:
        cli: Path of the csv-analyst executable.
        questions: The batch's questions.
        work_dir: Temporary folder for the batch file and the capsule database.
        index: Batch number, for file names and messages.
        timeout: Seconds the whole batch may take; on expiry the CLI's process group is killed
            and the answers printed so far are kept.

    Returns:
        The answers by id and any warnings about the CLI run.

    Raises:
        BenchError: The CLI could not be started, or it failed without printing any answer.
    """
    batch_file = work_dir / f"batch-{index:03d}.jsonl"
    batch_file.write_text("".join(json.dumps(batch_line(q)) + "\n" for q in questions), encoding="utf-8")
    argv = batch_command(cli, batch_file, work_dir / "capsules.sqlite3", planner)
    warnings: list[str] = []
    try:
        # A new session so a timeout can end the CLI together with its sandboxed runs.
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True, cwd=work_dir)
    except OSError as error:
        raise BenchError(f"cannot start {cli}: {error}; pass --cli PATH") from error
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it finished just as the limit passed
        stdout, stderr = process.communicate()
        warnings.append(f"batch {index} ({len(questions)} questions) hit the {timeout:g} s limit set by "
                        "--timeout-per-batch; unanswered questions count as wrong")
    answers = parse_answers(stdout)
    if process.returncode not in (0, -signal.SIGKILL):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        if not answers:
            # Nothing answered and a failing exit: the CLI is broken, not the planner wrong.
            raise BenchError(f"batch {index}: {cli} exited with {process.returncode} and printed no answers: {tail}")
        warnings.append(f"batch {index}: {cli} exited with {process.returncode}: {tail}")
    return answers, warnings


def score_set(name: str, questions: Iterable[Question], answers: dict[str, dict[str, Any]]) -> SetReport:
    """Score every question of a set against the answers by id.

    Args:
        name: The set name (selects the scoring rule).
        questions: The set's questions.
        answers: The CLI's answer objects by id; a missing id counts as wrong.

    Returns:
        The set's report.
    """
    set_rule = PRACTICE_SETS[name][1] if name in PRACTICE_SETS else name
    report = SetReport(name)
    for question in questions:
        answer = answers.get(question.id)
        scorer = SCORERS[question.scoring or set_rule]
        verdict: Verdict = scorer(question.gold, question.order_matters, answer)
        report.questions += 1
        counts = report.categories.setdefault(
            question.category, {"questions": 0, "correct": 0, "answered": 0, "clarifications": 0})
        counts["questions"] += 1
        report.statuses[str(answer.get("status")) if answer else "NO_ANSWER"] += 1
        if answer and answer.get("status") == "SUCCEEDED":
            report.answered += 1
            counts["answered"] += 1
        error = answer.get("error") if answer else None
        if isinstance(error, dict) and error.get("code") == CLARIFICATION:
            report.clarifications += 1
            counts["clarifications"] += 1
        if verdict.correct:
            report.correct += 1
            counts["correct"] += 1
            continue
        report.failures.append({
            "id": question.id,
            "category": question.category,
            "kind": verdict.kind,
            "status": answer.get("status") if answer else "NO_ANSWER",
            "error_code": error.get("code") if isinstance(error, dict) else None,
            "reason": verdict.reason,
            "question": question.question,
            "gold": question.gold,
            "sql": answer.get("sql") if answer else None,
            "explanation": answer.get("explanation") if answer else None,
        })
    return report


def run_set(name: str, sets_dir: Path, cli: str, limit: int | None, batch_size: int,
            timeout_per_batch: float, planner: str = "offline") -> SetReport:
    """Load, answer and score one set.

    Raises:
        BenchError: The set or the CLI is unusable.
    """
    set_dir = PRACTICE_DIR / PRACTICE_SETS[name][0] if name in PRACTICE_SETS else sets_dir / name
    questions = load_questions(set_dir, limit)
    answers: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-qa-{name}-") as work:
        for index, start in enumerate(range(0, len(questions), batch_size)):
            batch = questions[start:start + batch_size]
            print(f"{name}: batch {index + 1} ({len(batch)} questions)...", file=sys.stderr, flush=True)
            batch_answers, batch_warnings = run_batch(cli, batch, Path(work), index + 1, timeout_per_batch, planner)
            answers.update(batch_answers)
            warnings.extend(batch_warnings)
        usage = PlannerUsage()
        usage.add_store(Path(work) / "capsules.sqlite3")
    report = score_set(name, questions, answers)
    report.runner_warnings = warnings
    report.planner_usage = usage if planner != "offline" else None
    return report


def format_report(report: SetReport) -> str:
    """The human-readable report: accuracy, per-category table, statuses, failures with reasons."""
    lines = [f"== {report.name}: {report.correct}/{report.questions} correct, "
             f"accuracy {100 * report.accuracy:.1f}%, precision {100 * report.precision:.1f}% "
             f"({report.correct}/{report.answered} answered), {report.clarifications} clarifications", ""]
    width = max([len("category"), *(len(c) for c in report.categories)])
    lines.append(f"{'category'.ljust(width)}  correct  answered  total  accuracy  precision  clarified")
    for category, counts in sorted(report.categories.items()):
        share = 100 * counts["correct"] / counts["questions"]
        precise = 100 * _share(counts["correct"], counts["answered"])
        lines.append(f"{category.ljust(width)}  {counts['correct']:7d}  {counts['answered']:8d}  "
                     f"{counts['questions']:5d}  {share:7.1f}%  {precise:8.1f}%  {counts['clarifications']:9d}")
    for group, counts in report.groups().items():
        lines.append(f"group {group}: {counts['correct']}/{counts['questions']} correct, accuracy "
                     f"{100 * counts['correct'] / counts['questions']:.1f}%, precision "
                     f"{100 * _share(counts['correct'], counts['answered']):.1f}% "
                     f"({counts['correct']}/{counts['answered']} answered), {counts['clarifications']} clarifications")
    lines.append("")
    lines.append("status: " + ", ".join(f"{status} {count}" for status, count in sorted(report.statuses.items())))
    if report.planner_usage is not None:
        lines.append(report.planner_usage.format())
    for warning in report.runner_warnings:
        lines.append(f"warning: {warning}")
    if report.failures:
        lines.append("")
        lines.append(f"failed ({len(report.failures)}):")
        id_width = max(len(f["id"]) for f in report.failures)
        for failure in report.failures:
            kind = "wrong answer" if failure["kind"] == "wrong_answer" else "not answered"
            lines.append(f"  {failure['id'].ljust(id_width)}  [{failure['category']}] {kind}: {failure['reason']}")
    return "\n".join(lines)


def default_cli() -> str:
    """The csv-analyst beside this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "csv-analyst"
    return str(beside) if beside.exists() else "csv-analyst"


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of ``python -m bench.qa``."""
    parser = argparse.ArgumentParser(prog="python -m bench.qa", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=[*SET_NAMES, "all"], default="all",
                        help="question set to run ('all' = the open sets)")
    parser.add_argument("--sets-dir", type=Path, default=DEFAULT_SETS_DIR,
                        help=f"folder holding the sets (default: {DEFAULT_SETS_DIR})")
    parser.add_argument("--limit", type=int, default=None, help="run only the first N questions of each set")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the report as JSON to FILE")
    parser.add_argument("--cli", default=None, help="csv-analyst executable (default: the venv's)")
    parser.add_argument("--batch-size", type=int, default=100, help="questions per CLI call (default: 100)")
    parser.add_argument("--planner", choices=["offline", "claude"], default="offline",
                        help="planner to measure; claude needs ANTHROPIC_API_KEY (tokens, latency and cost are "
                             "reported too)")
    parser.add_argument("--timeout-per-batch", type=float, default=900.0,
                        help="seconds one CLI call may take before its unanswered questions count as wrong"
                             " (default: 900)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sets, print their reports, and optionally write them as JSON.

    Returns:
        0 when the measurement finished (whatever the accuracy), 2 when the runner could not run.
    """
    options = build_parser().parse_args(argv)
    if options.batch_size < 1 or (options.limit is not None and options.limit < 0):
        print("python -m bench.qa: --batch-size must be at least 1 and --limit not negative", file=sys.stderr)
        return 2
    if options.planner == "claude" and not os.environ.get("ANTHROPIC_API_KEY"):
        print("python -m bench.qa: --planner claude needs ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for another "
              "endpoint)", file=sys.stderr)
        return 2
    names = list(SCORERS) if options.set == "all" else [options.set]
    cli = options.cli or default_cli()
    reports: list[SetReport] = []
    try:
        for name in names:
            report = run_set(name, options.sets_dir, cli, options.limit, options.batch_size,
                             options.timeout_per_batch, options.planner)
            reports.append(report)
            print(format_report(report), flush=True)
            print()
    except BenchError as error:
        print(f"python -m bench.qa: {error}", file=sys.stderr)
        return 2
    if options.json_out is not None:
        payload = {"sets": [r.to_json() for r in reports]}
        options.json_out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return 0
