"""``python -m tests.bench``: what an idle run and a deploy cost, next to what they are made of.

Starts the Kubernetes API emulator and the GitHub fake of the tests, deploys the e2e app once
with the real runner and helm, then times whole processes side by side, round after round
(the order turning each round, so that drift hits every command alike):

- idle: ``ci-runner run`` (one state read, one free 304), ``python -c "import kubernetes"``,
  ``kubectl get configmap`` of the state, and ``python -c pass`` as the interpreter's floor;
- deploy: ``ci-runner run --force`` (build Job, helm upgrade, state writes) and the same
  ``helm upgrade --install --wait`` run alone.

Prints a table and writes it as JSON. Nothing here asserts a time, and CI does not run it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.bench import measure, report
from tests.bench.world import World, started

RUNNER_AGENT = "ci-runner/"


def main() -> None:
    """Parse the options, run the rounds, print and write the results."""
    if sys.argv[1:2] == ["fleet"]:  # the fleet's bench: tests/bench/fleet.py
        from tests.bench import fleet

        fleet.main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each group (7)")
    default_helm = int(os.environ.get("CI_RUNNER_HELM", "3"))
    parser.add_argument("--helm", type=int, choices=(3, 4), default=default_helm)
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter of the runner, e.g. a virtualenv with only its dependencies "
        "(default: this one)",
    )
    parser.add_argument(
        "--big-tarball",
        type=int,
        default=0,
        metavar="MIB",
        help="then one deploy of a commit with MIB MiB of random bytes, for the runner's peak",
    )
    options = parser.parse_args()
    with started(options.helm, options.python) as world:
        try:
            results = bench(world, options.helm, max(options.rounds, 1))
            if options.big_tarball > 0:
                big = world.big_deploy(options.big_tarball)
                results.big_tarball = (options.big_tarball, big.runner_mib)
        except measure.Failed as e:
            sys.exit(f"bench: {e}")
    print(report.table(results))
    options.json.write_text(report.as_json(results))
    print(f"\nwritten to {options.json}")


def bench(world: World, helm_major: int, rounds: int) -> report.Results:
    """Deploy once, warm every command up, then the idle rounds and the deploy rounds."""
    world.time(world.runner())  # the first deploy
    results = report.Results(helm_version(world), runtime(world), rounds)
    helm_argv, values = world.helm_upgrade(helm4=helm_major >= 4)
    idle: dict[str, Callable[[], measure.Sample]] = {
        "ci-runner run (idle)": lambda: idle_run(world, results),
        'python -c "import kubernetes"': lambda: world.time(world.import_kubernetes()),
        "kubectl get configmap": lambda: world.time(world.kubectl_get()),
        "python -c pass": lambda: world.time([world.python, "-c", "pass"]),
    }
    deploy: dict[str, Callable[[], measure.Sample]] = {
        "ci-runner run --force (deploy)": lambda: deploy_run(world, results),
        "helm upgrade --install --wait": lambda: world.time(helm_argv, values),
    }
    for command in [*idle.values(), *deploy.values()]:
        command()  # warm-up: bytecode caches, kubectl's discovery cache; not counted
    results.counts.clear()
    results.probes.clear()
    for group in (idle, deploy):
        samples: dict[str, list[measure.Sample]] = {name: [] for name in group}
        names = list(group)
        for turn in range(rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                samples[name].append(group[name]())
        results.summaries += [measure.Summary.of(n, s) for n, s in samples.items()]
    return results


def idle_run(world: World, results: report.Results) -> measure.Sample:
    """An idle run, with the requests it made to Kubernetes and GitHub and what they cost."""
    world.emulator.clear_requests()
    github_before = len(world.github.requests)
    remaining = world.github.rate_limit_remaining
    sample, helm_commands = world.helm_commands_of(world.runner())
    ours = [r for r in world.emulator.requests if r.user_agent.startswith(RUNNER_AGENT)]
    asked = world.github.requests[github_before:]
    results.counts.append(
        report.IdleCounts(
            kubernetes=[f"{r.verb} {r.resource or r.path} {r.status}" for r in ours],
            github=[f"{r.method} {r.path} {r.status}" for r in asked],
            rate_limit_spent=remaining - world.github.rate_limit_remaining,
            helm_processes=len(helm_commands),
        )
    )
    return sample


def deploy_run(world: World, results: report.Results) -> measure.Sample:
    """A forced deploy, with the runner's own peak (the probe) and the helm processes it ran."""
    probed = world.probed(world.runner("--force"))
    results.probes.append(probed)
    return probed.sample


def helm_version(world: World) -> str:
    """The helm the bench runs, as it names itself."""
    done = subprocess.run(
        [world.helm, "version", "--short"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def runtime(world: World) -> str:
    """The runner's Python and kubernetes client, by version."""
    script = "import sys, kubernetes; print(sys.version.split()[0], kubernetes.__version__)"
    done = subprocess.run([world.python, "-c", script], capture_output=True, text=True, check=True)
    python, client = done.stdout.split()
    return f"Python {python}, kubernetes {client}"


if __name__ == "__main__":
    main()
