"""The GitHub fake behaves like GitHub where the runner depends on it, seen through real clients."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.github_fake import GitHubFake

SHA_MEDIA = {"Accept": "application/vnd.github.sha"}
TOKEN = "s3cret"


@pytest.fixture
def repo(github: GitHubFake) -> str:
    github.create_repo("acme/app")
    return "acme/app"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["Authorization"] = f"token {TOKEN}"
        yield s


def head(
    session: requests.Session, github: GitHubFake, ref: str, **headers: str
) -> requests.Response:
    return session.get(
        f"{github.url}/repos/acme/app/commits/{ref}", headers={**SHA_MEDIA, **headers}
    )


def test_commit_as_bare_sha_and_as_json(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    first = github.push(repo, "main", {"a.txt": "1"}, message="first")
    second = github.push(repo, "main", {"a.txt": "2"}, message="second")

    bare = head(session, github, "main")
    assert bare.status_code == 200
    assert bare.text == second
    assert bare.headers["Content-Type"].startswith("application/vnd.github.sha")

    as_json = session.get(f"{github.url}/repos/acme/app/commits/main").json()
    assert as_json["sha"] == second
    assert as_json["commit"]["message"] == "second"
    assert [p["sha"] for p in as_json["parents"]] == [first]
    assert (
        session.get(f"{github.url}/repos/acme/app/commits/{first}", headers=SHA_MEDIA).text == first
    )


def test_etag_gives_304_without_spending_the_rate_limit(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    first = head(session, github, "main")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong

    again = head(session, github, "main", **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert github.rate_limit_remaining == int(first.headers["x-ratelimit-remaining"])


def test_etag_depends_on_representation_and_token(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    bare = head(session, github, "main").headers["ETag"]
    as_json = session.get(f"{github.url}/repos/acme/app/commits/main").headers["ETag"]
    other_token = head(session, github, "main", Authorization="token other").headers["ETag"]
    assert len({bare, as_json, other_token}) == 3
    # An ETag stored under another token does not give a 304.
    assert head(session, github, "main", **{"If-None-Match": other_token}).status_code == 200


def test_new_push_changes_etag_and_answers_200(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    etag = head(session, github, "main").headers["ETag"]
    new = github.push(repo, "main", {"a.txt": "2"})

    after = head(session, github, "main", **{"If-None-Match": etag})
    assert after.status_code == 200
    assert after.text == new
    assert after.headers["ETag"] != etag


def test_rate_limit_headers_count_down_per_credential(github: GitHubFake, repo: str) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    with requests.Session() as anonymous:
        one = head(anonymous, github, "main").headers
        two = head(anonymous, github, "main").headers
    assert one["x-ratelimit-limit"] == "60"
    assert (one["x-ratelimit-remaining"], two["x-ratelimit-remaining"]) == ("59", "58")
    assert two["x-ratelimit-used"] == "2"
    assert two["x-ratelimit-resource"] == "core"
    assert int(two["x-ratelimit-reset"]) > time.time()
    with requests.Session() as authenticated:
        authenticated.headers["Authorization"] = "Bearer t"
        assert head(authenticated, github, "main").headers["x-ratelimit-remaining"] == "4999"
    assert github.rate_limit_remaining == 4999


def test_anonymous_limit_runs_out_after_60_requests(github: GitHubFake, repo: str) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    with requests.Session() as anonymous:
        statuses = [head(anonymous, github, "main").status_code for _ in range(60)]
        limited = head(anonymous, github, "main")
        rate = anonymous.get(f"{github.url}/rate_limit").json()["resources"]["core"]
    assert statuses == [200] * 60
    assert limited.status_code == 403
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert "API rate limit exceeded" in limited.json()["message"]
    assert (rate["limit"], rate["remaining"]) == (60, 0)


def test_tarball_redirect_drops_token_and_holds_the_tree(
    github: GitHubFake, session: requests.Session, tmp_path: Path
) -> None:
    github.create_repo("acme/private", private=True)
    files = {"chart/Chart.yaml": "name: app\n", "chart/templates/cm.yaml": "kind: ConfigMap\n"}
    sha = github.push("acme/private", "main", {**files, "bin.dat": b"\x00\xff"})

    answer = session.get(f"{github.url}/repos/acme/private/tarball/{sha}")
    assert answer.status_code == 200
    assert [r.status_code for r in answer.history] == [302]
    assert answer.url.startswith(f"{github.download_url}/acme/private/legacy.tar.gz/{sha}?token=")

    api_call, download = github.requests
    assert (api_call.host, api_call.status) == ("api", 302)
    assert api_call.headers["Authorization"] == f"token {TOKEN}"
    assert (download.host, download.status) == ("download", 200)
    assert download.header("Authorization") is None

    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        members = tar.getmembers()
        tar.extractall(tmp_path, filter="data")
    top = f"acme-private-{sha[:7]}"
    assert {m.name.split("/")[0] for m in members} == {top}
    assert all(m.mode == 0o644 for m in members if m.isfile())
    assert [p.name for p in tmp_path.iterdir()] == [top]
    extracted = {
        str(p.relative_to(tmp_path / top)): p.read_bytes()
        for p in (tmp_path / top).rglob("*")
        if p.is_file()
    }
    assert extracted == {**{k: v.encode() for k, v in files.items()}, "bin.dat": b"\x00\xff"}


def test_an_inflated_archive_is_a_gzip_tar_as_github_makes_them(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    # GitHub's archive: gzip (RFC 1952: CRC-32 and size checked by Python's reader), a pax
    # global header carrying the commit id (git archive's "comment"), one top directory.
    # 9 MiB and a few bytes: whole repeated blocks, then a tail.
    sha = github.push(repo, "main", {"chart/Chart.yaml": "name: app\n"})
    size = 9 * 1024 * 1024 + 5
    github.inflate_tarball(repo, sha, {"assets/zeros.bin": size})
    packed = session.get(f"{github.url}/repos/acme/app/tarball/{sha}").content
    assert len(packed) < size // 500
    whole = gzip.decompress(packed)
    assert len(whole) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        assert tar.pax_headers == {"comment": sha}
        members = {m.name: m for m in tar.getmembers()}
        top = f"acme-app-{sha[:7]}"
        assert sorted(members) == [
            top, f"{top}/assets", f"{top}/assets/zeros.bin", f"{top}/chart",
            f"{top}/chart/Chart.yaml",
        ]  # fmt: skip
        zeros = tar.extractfile(members[f"{top}/assets/zeros.bin"])
        assert zeros is not None and zeros.read() == bytes(size)
        chart = tar.extractfile(members[f"{top}/chart/Chart.yaml"])
        assert chart is not None and chart.read() == b"name: app\n"


def test_private_archive_needs_the_signed_link(
    github: GitHubFake, session: requests.Session
) -> None:
    github.create_repo("acme/private", private=True)
    sha = github.push("acme/private", "main", {"a.txt": "1"})
    location = session.get(
        f"{github.url}/repos/acme/private/tarball/main", allow_redirects=False
    ).headers["Location"]
    unsigned, _, signed = location.partition("?token=")
    with requests.Session() as plain:
        assert plain.get(location).status_code == 200
        assert plain.get(unsigned, headers={"Authorization": f"token {TOKEN}"}).status_code == 404
        assert plain.get(f"{unsigned}?token={signed[:-1]}X").status_code == 404
        # Without a token the private repository does not exist at all.
        assert plain.get(f"{github.url}/repos/acme/private/commits/{sha}").status_code == 404


def test_set_tarball_is_served_verbatim(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    hostile = b"\x1f\x8b not really a tar"
    github.set_tarball(repo, sha, hostile)
    assert session.get(f"{github.url}/repos/acme/app/tarball/main").content == hostile


def test_urllib_forwards_add_header_tokens_on_redirect(github: GitHubFake, repo: str) -> None:
    """The fake shows where a token went: urllib keeps ``add_header`` headers across hosts."""
    github.push(repo, "main", {"a.txt": "1"})
    leaky = urllib.request.Request(f"{github.url}/repos/acme/app/tarball/main")
    leaky.add_header("Authorization", "token leaked")
    safe = urllib.request.Request(f"{github.url}/repos/acme/app/tarball/main")
    safe.add_unredirected_header("Authorization", "token kept")
    for request in (leaky, safe):
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
    downloads = [r.header("Authorization") for r in github.requests if r.host == "download"]
    assert downloads == ["token leaked", None]


def test_statuses_are_recorded_and_validated(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    url = f"{github.url}/repos/acme/app/statuses/{sha}"
    status = {
        "state": "pending",
        "context": "ci-runner",
        "description": "building",
        "target_url": None,
    }

    created = session.post(url, json=status)
    assert created.status_code == 201
    assert {k: created.json()[k] for k in status} == status

    bad = session.post(url, json={**status, "state": "running"})
    assert bad.status_code == 422
    assert bad.json()["message"] == "Validation Failed"
    too_long = session.post(url, json={**status, "description": "x" * 141})
    assert too_long.status_code == 422
    unknown = session.post(f"{github.url}/repos/acme/app/statuses/{'0' * 40}", json=status)
    assert unknown.status_code == 422

    recorded = github.statuses(repo, sha)
    assert [(s["state"], s["context"], s["description"]) for s in recorded] == [
        ("pending", "ci-runner", "building")
    ]


def test_require_token_answers_401_otherwise(github: GitHubFake, repo: str) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    github.require_token(TOKEN)
    url = f"{github.url}/repos/acme/app/commits/main"
    with requests.Session() as s:
        missing = s.get(url, headers=SHA_MEDIA)
        wrong = s.get(url, headers={**SHA_MEDIA, "Authorization": "token nope"})
        classic = s.get(url, headers={**SHA_MEDIA, "Authorization": f"token {TOKEN}"})
        bearer = s.get(url, headers={**SHA_MEDIA, "Authorization": f"Bearer {TOKEN}"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["message"] == "Bad credentials"
    assert (classic.text, bearer.text) == (sha, sha)


def test_fail_next_fails_only_the_matching_requests(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    github.fail_next("GET", r"/commits/", 500, times=2, headers={"Retry-After": "1"})
    github.fail_next("GET", r"/legacy\.tar\.gz/", 503)

    failed = [head(session, github, "main") for _ in range(2)]
    assert [r.status_code for r in failed] == [500, 500]
    assert failed[0].headers["Retry-After"] == "1"
    assert "x-ratelimit-remaining" in failed[0].headers
    assert head(session, github, "main").text == sha
    assert session.get(f"{github.url}/repos/acme/app/tarball/main").status_code == 503
    assert session.get(f"{github.url}/repos/acme/app/tarball/main").status_code == 200


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_exhausted(
    github: GitHubFake, repo: str, session: requests.Session, status: int
) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    github.rate_limit_exhausted(status=status)

    limited = head(session, github, "main")
    assert limited.status_code == status
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) > time.time()
    assert limited.json()["message"].startswith("API rate limit exceeded")
    assert head(session, github, "main").text == sha


def test_slow_next_makes_the_client_timeout_fire(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    sha = github.push(repo, "main", {"a.txt": "1"})
    github.slow_next(r"/commits/main$")
    with pytest.raises(requests.Timeout):
        session.get(f"{github.url}/repos/acme/app/commits/main", headers=SHA_MEDIA, timeout=0.5)
    assert head(session, github, "main").text == sha

    started = time.monotonic()
    github.stop()  # releases the held answer and the idle keep-alive connection promptly
    assert time.monotonic() - started < 5
    assert [r.status for r in github.requests] == [200, 0]


def test_branch_names_with_a_slash(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    main = github.push(repo, "main", {"a.txt": "1"})
    feature = github.push(repo, "feature/x", {"a.txt": "2"})
    assert main != feature

    assert head(session, github, "feature/x").text == feature
    assert head(session, github, "refs/heads/feature/x").text == feature
    branch = session.get(f"{github.url}/repos/acme/app/branches/feature/x")
    assert branch.json()["name"] == "feature/x"
    assert branch.json()["commit"]["sha"] == feature
    assert branch.json()["protected"] is False
    cached = session.get(
        f"{github.url}/repos/acme/app/branches/feature/x",
        headers={"If-None-Match": branch.headers["ETag"]},
    )
    assert cached.status_code == 304


def test_unknown_things_answer_like_github(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    github.push(repo, "main", {"a.txt": "1"})
    missing_repo = head(session, github, "main").url.replace("acme/app", "acme/nope")
    assert session.get(missing_repo).json()["message"] == "Not Found"
    assert session.get(missing_repo).status_code == 404

    no_branch = head(session, github, "gone")  # GitHub says 422 here, not 404
    assert no_branch.status_code == 422
    assert no_branch.json()["message"] == "No commit found for SHA: gone"
    assert session.get(f"{github.url}/repos/acme/app/branches/gone").status_code == 404
    assert session.get(f"{github.url}/repos/acme/app/tarball/gone").status_code == 404


# -- the head with its message, and compare (issue 10: [skip ci] and WATCH_PATHS) ---------------

JSON_MEDIA = {"Accept": "application/vnd.github+json"}


def test_the_json_head_read_carries_the_message_and_stays_conditional(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    """GitHub's "Get a commit" in the default JSON media type: ``sha``, ``commit.message``,
    ``files`` and ``stats``, with an ETag a 304 honours for free."""
    github.push(repo, "main", {"a.txt": "1\n", "b.txt": "x\n"}, message="first")
    sha = github.push(repo, "main", {"a.txt": "1\n2\n", "b.txt": None, "c.txt": "new\n"},
                      message="docs only\n\n[skip ci]")  # fmt: skip
    url = f"{github.url}/repos/acme/app/commits/main"

    first = session.get(url, headers=JSON_MEDIA)
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("application/json")
    body = first.json()
    assert body["sha"] == sha
    assert body["commit"]["message"] == "docs only\n\n[skip ci]"
    assert [(f["filename"], f["status"]) for f in body["files"]] == [
        ("a.txt", "modified"), ("b.txt", "removed"), ("c.txt", "added"),
    ]  # fmt: skip
    assert body["files"][0]["additions"] == 1
    assert body["stats"] == {"total": 3, "additions": 2, "deletions": 1}

    cached = session.get(url, headers={**JSON_MEDIA, "If-None-Match": first.headers["ETag"]})
    assert cached.status_code == 304
    assert cached.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]

    newer = github.push(repo, "main", {"a.txt": "3\n"}, message="feature")
    changed = session.get(url, headers={**JSON_MEDIA, "If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert (changed.json()["sha"], changed.json()["commit"]["message"]) == (newer, "feature")


def test_compare_lists_the_files_changed_since_the_base(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    base = github.push(repo, "main", {"src/app.py": "v1\n", "docs/a.md": "a\n"}, message="base")
    middle = github.push(repo, "main", {"docs/a.md": "b\n"}, message="docs")
    head = github.push(repo, "main", {"src/app.py": None, "src/new/b.py": "x\n"}, message="src")

    answer = session.get(f"{github.url}/repos/acme/app/compare/{base}...{head}")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["ahead_by"], body["behind_by"]) == ("ahead", 2, 0)
    assert body["total_commits"] == 2
    assert [c["sha"] for c in body["commits"]] == [middle, head]  # oldest first
    assert body["base_commit"]["sha"] == body["merge_base_commit"]["sha"] == base
    assert [(f["filename"], f["status"]) for f in body["files"]] == [
        ("docs/a.md", "modified"), ("src/app.py", "removed"), ("src/new/b.py", "added"),
    ]  # fmt: skip
    assert {"sha", "additions", "deletions", "changes", "contents_url"} <= body["files"][0].keys()

    same = session.get(f"{github.url}/repos/acme/app/compare/{head}...{head}").json()
    assert (same["status"], same["files"]) == ("identical", [])
    back = session.get(f"{github.url}/repos/acme/app/compare/{head}...{base}").json()
    assert (back["status"], back["behind_by"], back["files"]) == ("behind", 2, [])


def test_compare_without_shared_history_or_with_a_lost_commit_is_404(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    """What a base the branch no longer reaches (a force push) gets: a 404, not a comparison."""
    deployed = github.push(repo, "main", {"a.txt": "2\n"}, message="deployed")
    unrelated = github.push(repo, "orphan", {"b.txt": "3\n"}, message="a new root")

    apart = session.get(f"{github.url}/repos/acme/app/compare/{deployed}...{unrelated}")
    assert apart.status_code == 404
    assert apart.json()["message"].startswith("No common ancestor between")
    missing = session.get(f"{github.url}/repos/acme/app/compare/{'0' * 40}...main")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Not Found"


def test_compare_and_a_commit_list_at_most_300_files_without_saying_so(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    base = github.push(repo, "main", {"a.txt": "1\n"}, message="base")
    many = {f"gen/{i:03}.txt": f"{i}\n" for i in range(301)}
    head = github.push(repo, "main", many, message="generated")

    compare = session.get(f"{github.url}/repos/acme/app/compare/{base}...{head}").json()
    assert len(compare["files"]) == 300
    assert compare["status"] == "ahead"
    commit = session.get(f"{github.url}/repos/acme/app/commits/{head}", headers=JSON_MEDIA).json()
    assert len(commit["files"]) == 300


def test_rate_limit_endpoint_as_github_documents_it(github: GitHubFake, repo: str) -> None:
    # docs.github.com/rest/rate-limit "Get rate limit status for the authenticated user":
    # resources.core and resources.search (limit, remaining, reset, used), the deprecated
    # `rate` equal to core; asking does not count against the limit; bad credentials are 401.
    github.push(repo, "main", {"a.txt": "1"})
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        head(s, github, "main")
        first = s.get(f"{github.url}/rate_limit")
        second = s.get(f"{github.url}/rate_limit").json()
    assert first.status_code == 200
    payload = first.json()
    for bucket in ("core", "search"):
        fields = payload["resources"][bucket]
        assert {"limit", "remaining", "reset", "used"} <= set(fields)
        assert all(isinstance(fields[k], int) for k in ("limit", "remaining", "reset", "used"))
    core = payload["resources"]["core"]
    assert (core["limit"], core["remaining"], core["used"]) == (5000, 4999, 1)
    assert core["reset"] > time.time()
    assert payload["rate"] == core
    assert second["resources"]["core"]["remaining"] == 4999  # asking spent nothing
    assert first.headers["x-ratelimit-remaining"] == "4999"

    github.require_token(TOKEN)
    refused = requests.get(f"{github.url}/rate_limit", headers={"Authorization": "token nope"})
    assert refused.status_code == 401
    assert refused.json()["message"] == "Bad credentials"


def test_list_branches_has_the_documented_shape(
    github: GitHubFake, repo: str, session: requests.Session
) -> None:
    """docs.github.com/rest/branches/branches#list-branches: an array of {name, commit: {sha,
    url}, protected}, per_page (default 30)."""
    main = github.push(repo, "main", {"a": "1"})
    github.push(repo, "dev", {"a": "2"})
    listed = session.get(f"{github.url}/repos/{repo}/branches", params={"per_page": "1"})
    assert listed.status_code == 200
    (first,) = listed.json()
    assert set(first) == {"name", "commit", "protected"}
    assert set(first["commit"]) == {"sha", "url"}
    branches = session.get(f"{github.url}/repos/{repo}/branches").json()
    assert [b["name"] for b in branches] == ["dev", "main"]
    assert branches[1]["commit"]["sha"] == main
