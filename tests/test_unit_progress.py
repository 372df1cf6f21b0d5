"""Unit tests for mirrorci.progress: byte counts in words, and the one progress printer in CI and in a terminal."""

from __future__ import annotations

import pytest

from mirrorci import log, progress
from mirrorci.progress import Progress, human_bytes


@pytest.fixture(autouse=True)
def plain_log(monkeypatch):
    monkeypatch.setattr(log, "_secrets", set())
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITLAB_CI", raising=False)


@pytest.mark.parametrize("n,text", [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (5 << 20, "5.0 MiB"),
    (3 << 30, "3.0 GiB"), (5000 << 30, "5000.0 GiB"),
])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_ci_logs_each_quarter_once(capsys):
    p = Progress("upload x", total=400)
    for _ in range(8):
        p(50)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[1].split(",")[0] for line in lines] == [
        "100 B / 400 B (25%)", "200 B / 400 B (50%)", "300 B / 400 B (75%)"]
    p.close()
    assert capsys.readouterr().err.startswith("upload x: 400 B / 400 B (100%), ")


def test_a_jump_past_several_quarters_logs_one_line(capsys):
    p = Progress("download", total=100)
    p(80)
    p(10)
    assert capsys.readouterr().err.count("\n") == 1


def test_client_reports_show_its_rate_and_peers(capsys, monkeypatch):
    monkeypatch.setattr(progress, "CI_EVERY", 0.0)  # every report is a line
    p = Progress("torrent abc")
    p.update(1024, 4096, rate=512, peers=1, detail="2 web seeds sending")
    p.update(2048, 4096, rate=512, peers=3)
    first, second = capsys.readouterr().err.splitlines()
    assert first == "torrent abc: 1.0 KiB / 4.0 KiB (25%), 512 B/s, ETA 6s, 1 peer, 2 web seeds sending"
    assert second == "torrent abc: 2.0 KiB / 4.0 KiB (50%), 512 B/s, ETA 4s, 3 peers"
    p.close("download complete")
    assert capsys.readouterr().err.startswith("torrent abc: download complete in ")


def test_terminal_redraws_one_line(capsys, monkeypatch):
    p = Progress("upload y", total=10)
    monkeypatch.setattr(p, "_tty", True)
    p(5)
    err = capsys.readouterr().err
    assert err.startswith("\r\x1b[K" + "upload y: 5 B / 10 B (50%)") and "\n" not in err
    p.close()
    assert capsys.readouterr().err.startswith("\r\x1b[K" + "upload y: 5 B / 10 B (50%)")
