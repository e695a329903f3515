"""The bench's results: the machine, the table, the counts, the goals, and the JSON of it all."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.measure import Spread, Summary
from tests.bench.world import Probed

IDLE = "ci-runner run (idle)"
IMPORT_KUBERNETES = 'python -c "import kubernetes"'
DEPLOY = "ci-runner run --force (deploy)"
HELM_ALONE = "helm upgrade --install --wait"
RUNS_PER_DAY = 24 * 60
"""At a one-minute schedule."""


@dataclass(frozen=True)
class IdleCounts:
    """What one idle run asked of the outside world."""

    kubernetes: list[str]
    """The runner's requests to the API: verb, resource, status."""
    github: list[str]
    rate_limit_spent: int
    helm_processes: int


@dataclass
class Results:
    """Everything one bench run found."""

    helm: str
    runtime: str
    """The runner's interpreter and kubernetes client, by version."""
    rounds: int
    summaries: list[Summary] = field(default_factory=list)
    counts: list[IdleCounts] = field(default_factory=list)
    """One per timed idle run."""
    probes: list[Probed] = field(default_factory=list)
    """One per timed deploy."""
    big_tarball: tuple[int, float] | None = None
    """``--big-tarball``: the random bytes added (MiB) and the runner's own peak (MiB)."""

    def summary(self, name: str) -> Summary:
        """The summary of the command called ``name``."""
        return next(s for s in self.summaries if s.name == name)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": models[0] if models else platform.processor(),
        "kernel": platform.release(),
        # Other work on the machine skews every figure alike; the bench cannot stop it.
        "load_average_1m": os.getloadavg()[0],
    }


def goals(results: Results) -> list[tuple[str, float, float, bool]]:
    """Each goal of issue 11: what it is, the figure, the bound, whether it holds."""
    idle, floor = results.summary(IDLE), results.summary(IMPORT_KUBERNETES)
    deploy, helm = results.summary(DEPLOY), results.summary(HELM_ALONE)
    requests = max(len(c.kubernetes) for c in results.counts)
    spent = max(c.rate_limit_spent for c in results.counts)
    rows = [
        ('idle wall / "import kubernetes" wall', idle.wall.median / floor.wall.median, 1.3),
        ("idle peak RSS, MiB", idle.rss_mib.median, 50),
        ("Kubernetes requests per idle run (most)", requests, 1),
        ("GitHub rate limit spent per idle run (most)", spent, 0),
        ("deploy wall / helm upgrade wall", deploy.wall.median / helm.wall.median, 1.5),
    ]
    return [(what, figure, bound, figure <= bound) for what, figure, bound in rows]


def deploy_floor(results: Results) -> float:
    """The least a deploy's wall time can be, over helm's alone: a deploy does at least what an
    idle run does (start, import the client, read the state, ask GitHub) and then the same
    ``helm upgrade``; the build, the state writes and ``helm version`` are counted as free."""
    idle, helm = results.summary(IDLE).wall.median, results.summary(HELM_ALONE).wall.median
    return (idle + helm) / helm


def memory(results: Results) -> dict[str, Spread]:
    """The deploy's peaks: the runner's own, helm's, and their sum, which bounds the pod's.

    The runner waits for helm while helm runs, so both are resident at once. helm's peak is
    the one of ``helm upgrade`` run alone with the same chart and values: the helm a runner
    starts execs from the runner's memory, so its own ``ru_maxrss`` cannot be told apart
    (see ``spawn.py``).
    """
    runner = [p.runner_mib for p in results.probes]
    helm = results.summary(HELM_ALONE).rss_mib
    return {
        "runner": Spread.of(runner),
        "helm": helm,
        "runner + helm": Spread.of([r + helm.high for r in runner]),
    }


def _spread(spread: Spread, digits: int) -> str:
    return f"{spread.median:.{digits}f} ({spread.low:.{digits}f}-{spread.high:.{digits}f})"


def table(results: Results) -> str:
    """The results as text: the commands, the counts, the deploy's memory, the goals."""
    m = machine()
    lines = [
        f"{m['nproc']} x {m['cpu']}; {results.runtime}; helm {results.helm}; "
        f"{results.rounds} rounds; median (min-max); load average {m['load_average_1m']:.1f}",
        "",
        f"| {'command':<31} | {'wall s':<17} | {'CPU s':<17} | {'peak RSS MiB':<17} |",
        f"| {'-' * 31} | {'-' * 17} | {'-' * 17} | {'-' * 17} |",
    ]
    for s in results.summaries:
        lines.append(
            f"| {s.name:<31} | {_spread(s.wall, 2):<17} | {_spread(s.cpu, 2):<17} "
            f"| {_spread(s.rss_mib, 1):<17} |"
        )
    lines += ["", *_counts(results), *_deploys(results), "", "Goals:"]
    for what, figure, bound, met in goals(results):
        lines.append(f"  {'met' if met else 'MISSED':<6} {what}: {figure:.2f} (goal ≤ {bound:g})")
    lines.append(
        f"  floor  deploy wall / helm upgrade wall, were the build, the writes and helm version "
        f"free (idle run + helm upgrade): {deploy_floor(results):.2f}"
    )
    return "\n".join(lines)


def _counts(results: Results) -> list[str]:
    counts, last = results.counts, results.counts[-1]
    kubernetes = max(len(c.kubernetes) for c in counts)
    github = max(len(c.github) for c in counts)
    spent = max(c.rate_limit_spent for c in counts)
    helm = max(c.helm_processes for c in counts)
    cpu = results.summary(IDLE).cpu.median
    return [
        f"Idle run (most over the rounds): {kubernetes} Kubernetes request(s) "
        f"[{', '.join(last.kubernetes)}], {github} GitHub request(s) [{', '.join(last.github)}], "
        f"rate limit spent {spent}, helm processes {helm}",
        f"  per app at a one-minute schedule: {cpu:.2f} CPU-s per run, "
        f"{cpu * RUNS_PER_DAY / 60:.1f} CPU-min per day, {github * 60} GitHub requests and "
        f"{spent * 60} rate limit per hour, {kubernetes * 60} Kubernetes requests per hour",
    ]


def _deploys(results: Results) -> list[str]:
    helm_runs = {len(p.helm_commands) for p in results.probes}
    commands = [c.split(" ", 1)[0] for c in results.probes[-1].helm_commands]
    peaks = ", ".join(f"{k} {_spread(v, 1)} MiB" for k, v in memory(results).items())
    lines = [
        f"Deploy: {'/'.join(map(str, sorted(helm_runs)))} helm processes ({', '.join(commands)})",
        f"  peaks: {peaks}",
    ]
    if results.big_tarball:
        mib, peak = results.big_tarball
        lines.append(f"  with {mib} MiB of random bytes in the commit: runner {peak:.1f} MiB")
    return lines


def as_json(results: Results) -> str:
    """Every figure, the samples' summaries, the counts and the goals, as JSON."""
    document = {
        "machine": machine(),
        "helm": results.helm,
        "runtime": results.runtime,
        "rounds": results.rounds,
        "commands": [dataclasses.asdict(s) for s in results.summaries],
        "idle_runs": [dataclasses.asdict(c) for c in results.counts],
        "deploys": [{"runner_mib": p.runner_mib, "helm": p.helm_commands} for p in results.probes],
        "deploy_memory_mib": {k: dataclasses.asdict(v) for k, v in memory(results).items()},
        "big_tarball": (
            {"random_mib": results.big_tarball[0], "runner_mib": results.big_tarball[1]}
            if results.big_tarball
            else None
        ),
        "idle_cpu_seconds_per_day": results.summary(IDLE).cpu.median * RUNS_PER_DAY,
        "deploy_floor": deploy_floor(results),
        "goals": [
            {"goal": what, "figure": figure, "bound": bound, "met": met}
            for what, figure, bound, met in goals(results)
        ],
    }
    return json.dumps(document, indent=2) + "\n"
