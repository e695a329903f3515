"""Safe chart extraction: hostile or malformed archives are refused before anything lands."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from ci_runner.archive import extract_chart
from ci_runner.errors import ArchiveError, BadCommit

TOP = "acme-shop-0123456"
CHART = {"deploy/chart/Chart.yaml": b"apiVersion: v2\nname: shop\nversion: 0.1.0\n"}


def tarball(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buffer.getvalue()


def github_tarball(files: dict[str, bytes]) -> bytes:
    return tarball({f"{TOP}/{name}": data for name, data in files.items()})


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def test_only_the_chart_directory_is_extracted(tmp_path: Path) -> None:
    data = github_tarball(
        {**CHART, "deploy/chart/templates/cm.yaml": b"kind: ConfigMap\n", "README.md": b"hi"}
    )
    chart = extract_chart(io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456")
    extracted = sorted(str(p.relative_to(chart)) for p in chart.rglob("*") if p.is_file())
    assert extracted == ["Chart.yaml", "templates/cm.yaml"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (tarball({"../evil": b"x"}), "unsafe path"),
        (tarball({"/etc/evil": b"x"}), "unsafe path"),
        (tarball({f"{TOP}/deploy/chart/Chart.yaml": b"x", "other/x": b"x"}), "more than one top"),
        (
            tarball(
                {f"{TOP}/deploy/chart/Chart.yaml": b"x"},
                [link(f"{TOP}/deploy/chart/templates/x.yaml", "/etc/passwd")],
            ),
            "link or special file",
        ),
        (
            tarball(
                {f"{TOP}/deploy/chart/Chart.yaml": b"x"},
                [link(f"{TOP}/deploy/chart/h", f"{TOP}/README.md", tarfile.LNKTYPE)],
            ),
            "link or special file",
        ),
        (b"this is not a tarball", "not a gzip tar archive"),
        (tarball({}), "empty"),
    ],
    # Named ids: the default ones would embed the gzip bytes, whose header holds the time of
    # writing, so two xdist workers collecting a second apart would see different tests.
    ids=["parent", "absolute", "two-tops", "symlink", "hardlink", "not-gzip", "empty"],
)
def test_hostile_archives_are_refused_and_nothing_lands(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(ArchiveError, match=message):
        extract_chart(io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456")
    assert list(tmp_path.iterdir()) == []


def test_missing_chart_is_the_commits_fault(tmp_path: Path) -> None:
    with pytest.raises(BadCommit, match="does not exist"):
        extract_chart(
            io.BytesIO(github_tarball(CHART)), "charts/other", tmp_path, "acme/shop@0123456"
        )
    with pytest.raises(BadCommit, match=r"no Chart\.yaml"):
        extract_chart(
            io.BytesIO(github_tarball({"deploy/x": b""})), "deploy", tmp_path, "acme/shop@0123456"
        )


def zeros_then_chart(zeros: int) -> bytes:
    """A tarball with ``zeros`` bytes of zeros outside the chart, then the chart."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"{TOP}/assets/zeros.bin")
        info.size = zeros
        tar.addfile(info, io.BytesIO(bytes(info.size)))
        for name, data in CHART.items():
            chart = tarfile.TarInfo(f"{TOP}/{name}")
            chart.size = len(data)
            tar.addfile(chart, io.BytesIO(data))
    return buffer.getvalue()


def test_what_the_rest_of_the_repository_inflates_to_does_not_count(tmp_path: Path) -> None:
    data = zeros_then_chart(64 * 1024 * 1024)  # about 64 KiB of gzip
    assert len(data) < 1024 * 1024
    chart = extract_chart(io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456")
    assert [p.name for p in chart.iterdir()] == ["Chart.yaml"]


def test_a_gzip_bomb_outside_the_chart_is_cut_off_by_time_and_nothing_lands(
    tmp_path: Path,
) -> None:
    # A clock that moves a second per look: the 64 MiB of zeros take 64 reads of a MiB, so
    # within 10 s the pass ends among them, as a real bomb's does at TARBALL_TIMEOUT.
    ticks = iter(range(10**6))
    data = zeros_then_chart(64 * 1024 * 1024)
    with pytest.raises(ArchiveError) as refused:
        extract_chart(
            io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456", 10, lambda: next(ticks)
        )
    assert str(refused.value).startswith(
        "the tarball of acme/shop@0123456 did not unpack within 10s (TARBALL_TIMEOUT; "
    )
    assert list(tmp_path.iterdir()) == []


def test_a_chart_file_after_a_bad_member_leaves_nothing_behind(tmp_path: Path) -> None:
    data = tarball(
        {f"{TOP}/deploy/chart/Chart.yaml": b"x", f"{TOP}/deploy/chart/values.yaml": b"a: 1"},
        [link(f"{TOP}/deploy/chart/templates/x.yaml", "/etc/passwd")],
    )
    with pytest.raises(ArchiveError, match="link or special file"):
        extract_chart(io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_gzip_stream_is_refused(tmp_path: Path) -> None:
    data = bytearray(github_tarball(CHART))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ArchiveError):
        extract_chart(io.BytesIO(data), "deploy/chart", tmp_path, "acme/shop@0123456")


def test_a_200_mb_values_file_in_the_chart_is_refused_naming_it(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, data in CHART.items():
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        big = tarfile.TarInfo(f"{TOP}/deploy/chart/values-big.yaml")
        big.size = 200 * 1024 * 1024
        tar.addfile(big, io.BytesIO(bytes(big.size)))
    with pytest.raises(ArchiveError) as caught:
        extract_chart(io.BytesIO(buffer.getvalue()), "deploy/chart", tmp_path, "acme/shop@0123456")
    assert str(caught.value) == (
        "the chart in the tarball of acme/shop@0123456 is over 2000 files or 52428800 bytes "
        "(at 'deploy/chart/values-big.yaml', 209715200 bytes)"
    )
    assert not (tmp_path / "chart").exists()


def test_a_build_context_keeps_its_tree_and_the_symlinks_inside_it(tmp_path: Path) -> None:
    from ci_runner.archive import extract_context

    data = tarball(
        {
            f"{TOP}/app/Dockerfile": b"FROM scratch\n",
            f"{TOP}/app/src/main.py": b"print()\n",
            f"{TOP}/deploy/chart/Chart.yaml": b"x",
        },
        [link(f"{TOP}/app/main.py", "src/main.py")],
    )
    extract_context(io.BytesIO(data), "app", tmp_path, "acme/shop@0123456")
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
    assert found == ["Dockerfile", "main.py", "src/main.py"]
    assert (tmp_path / "main.py").is_symlink()
    assert (tmp_path / "main.py").read_bytes() == b"print()\n"


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("../deploy/chart/Chart.yaml", tarfile.SYMTYPE),
        ("/etc/passwd", tarfile.SYMTYPE),
        (f"{TOP}/app/Dockerfile", tarfile.LNKTYPE),
    ],
    ids=["symlink-out", "absolute", "hardlink"],
)
def test_a_build_context_refuses_links_leaving_it(tmp_path: Path, target: str, kind: bytes) -> None:
    from ci_runner.archive import extract_context

    data = tarball(
        {f"{TOP}/app/Dockerfile": b"FROM scratch\n"}, [link(f"{TOP}/app/x", target, kind)]
    )
    with pytest.raises(ArchiveError, match="link or special file in the build context"):
        extract_context(io.BytesIO(data), "app", tmp_path, "acme/shop@0123456")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_build_context_is_the_commits_fault(tmp_path: Path) -> None:
    from ci_runner.archive import extract_context

    with pytest.raises(BadCommit, match="BUILD_CONTEXT 'web' does not exist"):
        extract_context(io.BytesIO(github_tarball(CHART)), "web", tmp_path, "acme/shop@0123456")


def test_the_default_build_context_is_the_whole_repository(tmp_path: Path) -> None:
    from ci_runner.archive import extract_context

    data = github_tarball({"Dockerfile": b"FROM scratch\n", **CHART})
    extract_context(io.BytesIO(data), ".", tmp_path, "acme/shop@0123456")
    found = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert found == ["Dockerfile", "deploy/chart/Chart.yaml"]
