"""The viewer reads a run folder as data (issue 21): an items file replaced by a symbolic link (to a file of the
user's, say) is refused in one line, exit 2, instead of being followed and copied into the site."""

from __future__ import annotations

from harness.store import RunDir
from tests.viewer_fixtures import CHECKPOINTS, small_run


def test_a_symlinked_items_file_is_refused_not_copied_into_the_site(cli, tmp_path):
    run = small_run(tmp_path / "run")
    model, _ = CHECKPOINTS[0]
    items = RunDir(run).samples_dir(model, None, "alpaca_eval") / "items.jsonl"
    outside = tmp_path / "outside.jsonl"
    outside.write_text(items.read_text())  # a valid items file: only the link makes it wrong
    items.unlink()
    items.symlink_to(outside)
    code, out, err = cli("view", run, "--out", tmp_path / "site")
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "symbolic link" in err and "Traceback" not in err
    assert not (tmp_path / "site").exists()
