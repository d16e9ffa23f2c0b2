"""'wtp cochange --calibrate' writes [check] cochange into a .wtp.toml of any valid spelling
(review 36: a second [check] table or key was appended, and written before it was checked, so
every command then exited 2 on the config), keeping the user's comments, line endings and
permissions, and never writes a file that would not load."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from worktree_par import config

from .conftest import Repo, make_repo

ABOUT = "# Files that usually changed together in this repository's history: warn | hold | off.\n"
NOTE = "# co-change calibration: too few merges to tell (0 usable pairs; 20 needed)\n"
BLOCK = ABOUT + NOTE


@pytest.fixture
def few(tmp_path: Path) -> Repo:
    """A repository without merges: calibration turns the layer off."""
    return make_repo(tmp_path, fixture=None)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            'base = "main"\n[check] # collision checks\ncochange = "hold"  # ours\n[land]\ngate = "true"\n',
            f'base = "main"\n[check] # collision checks\n{BLOCK}cochange = "off"  # ours\n[land]\ngate = "true"\n',
            id="comment-after-header",
        ),
        pytest.param(
            'base = "main"\ncheck.cochange = "hold"\n',
            f'base = "main"\n{BLOCK}check.cochange = "off"\n',
            id="dotted-key",
        ),
        pytest.param(
            'base = "main"\ncheck = { cochange = "hold" }\n',
            f'base = "main"\n{BLOCK}check = {{ cochange = "off" }}\n',
            id="inline-table",
        ),
        pytest.param(
            'base = "main"\n["check"]\ncochange = "hold"\n',
            f'base = "main"\n["check"]\n{BLOCK}cochange = "off"\n',
            id="quoted-table-name",
        ),
        pytest.param(
            'base = "main"\n[check]\n"cochange" = \'hold\'\n',
            f'base = "main"\n[check]\n{BLOCK}"cochange" = "off"\n',
            id="quoted-key",
        ),
        pytest.param(
            'base = "main"\n[ check ] # no cochange yet\nhot = ["x"]\n\n[land]\ngate = "true"\n',
            f'base = "main"\n[ check ] # no cochange yet\n{BLOCK}cochange = "off"\nhot = ["x"]\n\n[land]\ngate = "true"\n',
            id="table-without-the-key",
        ),
        pytest.param(
            'base = "main"\ncheck.hot = ["x"]\n[land]\ngate = "true"\n',
            f'base = "main"\n{BLOCK}check.cochange = "off"\ncheck.hot = ["x"]\n[land]\ngate = "true"\n',
            id="dotted-table-without-the-key",
        ),
        pytest.param(
            'check = { hot = ["x"] }  # inline\n',
            f'{BLOCK}check = {{ cochange = "off", hot = ["x"] }}  # inline\n',
            id="inline-table-without-the-key",
        ),
        pytest.param(
            'base = "main"\n[setup]\nrun = ["""\n[check]\ncochange = "hold"\n"""]\n',
            f'base = "main"\n[setup]\nrun = ["""\n[check]\ncochange = "hold"\n"""]\n\n[check]\n{BLOCK}cochange = "off"\n',
            id="a-table-header-inside-a-string-is-text",
        ),
        pytest.param(
            'base = "main"\r\n[check]\r\ncochange = "warn"\r\n',
            f'base = "main"\r\n[check]\r\n{BLOCK.replace(chr(10), chr(13) + chr(10))}cochange = "off"\r\n',
            id="crlf",
        ),
        pytest.param(
            'base = "main"',
            f'base = "main"\n\n[check]\n{BLOCK}cochange = "off"\n',
            id="no-check-table-no-final-newline",
        ),
    ],
)
def test_calibrate_sets_the_value_in_any_spelling_and_keeps_the_rest(few: Repo, before: str, after: str) -> None:
    path = few.path / ".wtp.toml"
    path.write_bytes(before.encode())
    os.chmod(path, 0o640)
    assert few.wtp("list").code == 0
    out = few.wtp("cochange", "--calibrate")
    assert (out.code, out.err.splitlines()[-1:]) == (0, ["replaying the merges of 'main' ..."])
    assert out.lines == [
        "co-change layer off: too few merges to tell (0 usable pairs; 20 needed)",
        f'wrote cochange = "off" to {path}',
    ]
    assert path.read_bytes().decode() == after
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert config.load(few.path).check_cochange == "off"
    assert few.wtp("list").code == 0
    again = few.wtp("cochange", "--calibrate")  # the figures are replaced, not added
    assert again.code == 0 and path.read_bytes().decode() == after


def test_an_edit_that_would_not_load_is_never_written(few: Repo) -> None:
    from worktree_par import configedit
    from worktree_par.errors import ConfigError

    path = few.path / ".wtp.toml"
    before = 'base = "main"\n[check] # ours\ncochange = "hold"\n'
    path.write_text(before)
    with pytest.raises(ConfigError) as e:
        configedit.write_cochange(path, "sometimes", "figures")  # parses, but is no wtp config
    assert str(e.value) == (
        f"{path}: [check] cochange cannot be set safely in the form this file gives it, so the file is left "
        'as it was: set cochange = "sometimes" in its [check] table by hand (co-change calibration: figures)'
    )
    assert path.read_text() == before
    assert sorted(p.name for p in few.path.iterdir()) == [".git", ".wtp.toml", "README.md"]  # no temp file left
    assert tomllib.loads(before)["check"]["cochange"] == config.load(few.path).check_cochange == "hold"
