"""The fleet's questions to GitHub, against the GitHub fake: conditional and free when nothing
changed, one app's failure that app's, and a rate-limit answer ending the round for everyone."""

from __future__ import annotations

import time

from ci_runner.github.heads import Heads, Question

from tests.support.github_fake import GitHubFake

TOKEN = "fleet-token-for-tests"


def heads(github: GitHubFake, concurrency: int = 4) -> Heads:
    return Heads(github.url, TOKEN, 5, True, concurrency)


def later() -> float:
    return time.monotonic() + 60


def test_an_unchanged_head_is_a_free_304_and_a_new_one_a_200(github: GitHubFake) -> None:
    github.create_repo("o/a")
    first = github.push("o/a", "main", {"f": "1"})
    with heads(github) as ask:
        answer = ask.ask([Question("a", "o/a", "main")], later()).answers["a"]
        assert (answer.sha, answer.status, answer.billable) == (first, 200, True)
        again = ask.ask([Question("a", "o/a", "main", answer.etag)], later()).answers["a"]
        assert (again.unchanged, again.billable, again.sha) == (True, False, None)
        second = github.push("o/a", "main", {"f": "2"})
        moved = ask.ask([Question("a", "o/a", "main", answer.etag)], later()).answers["a"]
        assert (moved.sha, moved.billable) == (second, True)
    assert [r.headers.get("Authorization") for r in github.requests] == [f"Bearer {TOKEN}"] * 3


def test_one_apps_failure_is_its_own(github: GitHubFake) -> None:
    github.create_repo("o/a")
    github.push("o/a", "main", {"f": "1"})
    questions = [
        Question("a", "o/a", "main"),
        Question("gone", "o/gone", "main"),
        Question("nobranch", "o/a", "nope"),
    ]
    with heads(github) as ask:
        asked = ask.ask(questions, later())
    assert asked.answers["a"].problem is None
    assert "no repository o/gone" in (asked.answers["gone"].problem or "")
    assert "no branch 'nope'" in (asked.answers["nobranch"].problem or "")
    assert asked.deferred == [] and asked.refused is None


def test_a_secondary_rate_limit_stops_the_round_and_defers_the_rest(github: GitHubFake) -> None:
    for name in ("a", "b", "c"):
        github.create_repo(f"o/{name}")
        github.push(f"o/{name}", "main", {"f": "1"})
    github.fail_next(
        "GET",
        "/repos/o/b/",
        403,
        headers={"retry-after": "120"},
        body={"message": "You have exceeded a secondary rate limit."},
    )
    questions = [Question(n, f"o/{n}", "main") for n in ("a", "b", "c")]
    with heads(github, concurrency=1) as ask:  # one at a time: the order is the questions'
        asked = ask.ask(questions, later())
    assert list(asked.answers) == ["a"]
    assert asked.deferred == ["b", "c"]
    assert asked.not_before >= int(time.time()) + 100
    assert "retry-after 120s" in asked.why_deferred
    assert [r.path for r in github.requests] == [
        "/repos/o/a/commits/main",
        "/repos/o/b/commits/main",
    ]


def test_past_the_deadline_nothing_more_is_asked(github: GitHubFake) -> None:
    with heads(github) as ask:
        asked = ask.ask([Question("a", "o/a", "main")], time.monotonic() - 1)
    assert (asked.answers, asked.deferred) == ({}, ["a"])
    assert "FLEET_DEADLINE" in asked.why_deferred
    assert github.requests == []


def test_a_refused_token_is_the_fleets_own_problem(github: GitHubFake) -> None:
    github.require_token("another-token")
    github.create_repo("o/a")
    with heads(github) as ask:
        asked = ask.ask([Question("a", "o/a", "main")], later())
    assert asked.refused is not None and "401" in asked.refused
