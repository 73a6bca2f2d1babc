"""`routemate status rebuild`'s progress: redrawn in place on a terminal, one summary line otherwise."""

import io

from routemate_cli.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def clock(*times: float):
    ticks = iter(times)
    return lambda: next(ticks)


def test_on_a_terminal_the_line_shows_done_of_total_rate_and_time_left_then_a_summary():
    out = Terminal()
    progress = Progress("events", out, clock(0.0, 2.0, 4.0))
    progress(5_000, 20_000)  # 2 s in: 2,500/s, 15,000 to go
    assert out.getvalue() == "\r[#####               ] 5,000 of 20,000 events 2,500/s ~6 s left "
    progress.finish()
    assert out.getvalue().endswith("\n5,000 events applied in 4.0 s (1,250/s)\n")


def test_redraws_are_at_most_ten_a_second_but_the_last_one_always_shows():
    out = Terminal()
    progress = Progress("events", out, clock(0.0, 1.0, 1.01, 1.02))
    progress(100, 300)
    progress(200, 300)  # 10 ms later: not redrawn
    progress(300, 300)  # the end: redrawn
    assert out.getvalue().count("\r") == 2 and "300 of 300" in out.getvalue() and "200 of" not in out.getvalue()


def test_off_a_terminal_only_the_plain_summary_line_is_written():
    out = io.StringIO()
    progress = Progress("events", out, clock(0.0, 1.0, 2.0))
    progress(1_000, 1_000)
    progress.finish()
    assert out.getvalue() == "1,000 events applied in 2.0 s (500/s)\n"


def test_rebuild_wants_a_target_database_or_a_dry_run_not_both_nor_neither():
    from typer.testing import CliRunner

    from routemate_cli.main import app

    runner = CliRunner()
    for args in ([], ["--dry-run", "--database-url", "sqlite:///x.db"]):
        done = runner.invoke(app, ["status", "rebuild", *args])
        assert done.exit_code == 2 and "--database-url" in done.output and "Traceback" not in done.output
