"""Build or start the real control plane by hand.

    python -m tests.cluster build [--kubernetes 1.35]   build (or reuse) the binaries
    python -m tests.cluster [--kubernetes 1.35] up      start it; prints the kubeconfig; ^C stops it
    python -m tests.cluster run -- COMMAND ...          start it, run COMMAND against it, stop it

``run`` gives COMMAND the plane's kubeconfig as both KUBECONFIG and CI_RUNNER_TEST_KUBECONFIG
(the switch that points the end-to-end tests at a real cluster), CI_RUNNER_TEST_KWOK=1 (pods'
fates can be chosen, tests/cluster/stages.yaml), CI_RUNNER_TEST_ETCD (etcd's client URL, for
compaction) and CI_RUNNER_TEST_PLANE_PID (SIGUSR1 there kills kube-apiserver, SIGUSR2 starts it
again), and exits with COMMAND's exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from types import FrameType

from tests.cluster import build, controlplane


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["build", "up", "run"])
    parser.add_argument(
        "--kubernetes",
        default=build.PINNED_KUBERNETES,
        help=f"the minor to build and run (default {build.PINNED_KUBERNETES})",
    )
    parser.add_argument("command", nargs="*", help="with run: the command to run")
    args = parser.parse_args(argv)
    if args.action == "build":
        for name, path in sorted(build.build_all(args.kubernetes).items()):
            print(f"{name}\t{path}")
        return 0
    _stop_on_sigterm()
    with controlplane.running(args.kubernetes) as plane:
        version = plane.request("GET", "/version")["gitVersion"]
        env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),
            "CI_RUNNER_TEST_KUBECONFIG": str(plane.kubeconfig),
            # kwok plays the kubelet with our Stages: tests may choose a pod's fate
            "CI_RUNNER_TEST_KWOK": "1",
            "CI_RUNNER_TEST_ETCD": plane.etcd_url,
            # SIGUSR1 to this pid kills kube-apiserver, SIGUSR2 starts it again (restart tests)
            "CI_RUNNER_TEST_PLANE_PID": str(os.getpid()),
        }
        signal.signal(signal.SIGUSR1, lambda signum, frame: plane.kill_apiserver())
        signal.signal(signal.SIGUSR2, lambda signum, frame: plane.start_apiserver())
        print(f"kube-apiserver {version} at {plane.server}", flush=True)
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        if args.action == "run":
            return subprocess.run(args.command, env=env, check=False).returncode
        print("logs in " + str(plane.root) + "; stop with ^C (or SIGTERM)", flush=True)
        try:
            while True:  # pause returns after any handled signal (SIGUSR1, SIGUSR2)
                signal.pause()
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
