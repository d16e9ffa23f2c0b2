"""'wtp gate' at a terminal and against a dead remote (review 31): a gated command that reads
the terminal gets it, as in a shell, and wtp takes it back however the command ends (Ctrl-C,
Ctrl-Z and 'fg', a lost remote gate); --timeout bounds every network call of a remote gate's
wait; Ctrl-C of a waiter whose remote died ends within seconds and says its ticket was left;
a record full of malformed tickets is one line."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Repo, wait_for
from .test_network_boundary import Hang, _alive
from .test_remote import clone, holding
from .test_remote_records import plant

WITHIN = 20  # seconds: far below the 30 s of [remote] timeout these waits took before

# A shell's job control, reduced to what these tests look at: wtp runs as a foreground job
# of its own, and the shell reports who has the terminal when the job stops (then 'fg's it
# at once) and when it ends.  Unlike a real shell it never takes the terminal back itself.
SHELL = r"""
import os, signal, sys
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpid())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.executable, [sys.executable, "-m", "worktree_par", *sys.argv[1:]])
try:
    os.setpgid(pid, pid)
except OSError:
    pass  # the child did it first
print(f"[wtp pid {pid}]", flush=True)
def owner():
    fg = os.tcgetpgrp(0)
    return "wtp" if fg == pid else "the shell" if fg == os.getpgrp() else f"group {fg}"
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        break
    print(f"[stopped; terminal with {owner()}]", flush=True)
    os.tcsetpgrp(0, pid)
    os.killpg(pid, signal.SIGCONT)
print(f"[exit {os.waitstatus_to_exitcode(status)}; terminal with {owner()}]", flush=True)
"""

PROMPT = 'printf "Continue? "; read x; echo "got: $x"'
TWICE = f'{PROMPT}; printf "Again? "; read y; echo "never: $y"'


class Terminal:
    """``wtp ARGS`` run by SHELL in a pseudo-terminal of its own, as typed at a prompt."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the session leader, with the terminal as its controlling one
            try:
                os.chdir(cwd)
                os.execv(sys.executable, [sys.executable, "-c", SHELL, *args])
            finally:
                os._exit(127)
        self.out, self.pos = "", 0
        self.wtp = int(self.expect(r"\[wtp pid (\d+)\]").group(1))
        self.ended = False

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the terminal shows ``pattern`` (after what was expected before)."""
        deadline = time.monotonic() + timeout
        while (found := re.compile(pattern).search(self.out, self.pos)) is None:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {pattern!r} on the terminal, which shows: {self.out!r}"
            if select.select([self.fd], [], [], min(left, 1.0))[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: everything on the terminal ended
                    chunk = b""
                assert chunk, f"the terminal closed before {pattern!r} showed: {self.out!r}"
                self.out += chunk.decode(errors="replace")
        self.pos = found.end()
        if found.group(0).startswith("[exit "):
            self.ended = True
        return found

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        # What this test started, by pid: wtp (its guardian then ends the command's group)
        # unless the shell reaped it already, then the shell.
        for pid in ([] if self.ended else [self.wtp]) + [self.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for t in started:
        t.close()


def _answered(started: list[Terminal], r: Repo, script: str, *gate: str) -> Terminal:
    """'wtp gate deploy GATE... -- sh -c SCRIPT' at a terminal, once its command read the
    answer typed to its first prompt (before: it was stopped, SIGTTIN, and wtp held the gate
    for ever)."""
    t = Terminal(r.path, "gate", "deploy", *gate, "--", "sh", "-c", script)
    started.append(t)
    t.expect(r"Continue\? ")
    t.type("yes\n")
    t.expect("got: yes")
    return t


def _tickets(r: Repo, remote: list[str]) -> list[object]:
    out = r.wtp_proc("gate", "deploy", "--status", "--json", *remote)
    assert out.code == 0, out.err
    tickets: list[object] = json.loads(out.out)["tickets"]
    return tickets


@pytest.mark.parametrize("remote", [[], ["--remote"]], ids=["local", "remote"])
def test_a_gate_command_reads_the_terminal_and_wtp_takes_it_back(
    remote_repo: Repo, terminal: list[Terminal], remote: list[str]
) -> None:
    t = _answered(terminal, remote_repo, PROMPT, *remote)
    t.expect(r"\[exit 0; terminal with wtp\]")
    assert _tickets(remote_repo, remote) == []


@pytest.mark.parametrize("remote", [[], ["--remote"]], ids=["local", "remote"])
def test_ctrl_c_at_the_terminal_ends_the_command_and_the_gate(
    remote_repo: Repo, terminal: list[Terminal], remote: list[str]
) -> None:
    t = _answered(terminal, remote_repo, TWICE, *remote)
    t.expect(r"Again\? ")
    t.type("\x03")  # Ctrl-C: to the foreground group, the command's
    t.expect(r"\[exit 130; terminal with wtp\]")
    assert "never" not in t.out
    assert _tickets(remote_repo, remote) == []


def test_ctrl_z_stops_the_job_with_the_terminal_back_and_fg_goes_on(
    remote_repo: Repo, terminal: list[Terminal]
) -> None:
    t = Terminal(remote_repo.path, "gate", "deploy", "--", "sh", "-c", PROMPT)
    terminal.append(t)
    t.expect(r"Continue\? ")
    t.type("\x1a")  # Ctrl-Z: the command stops, and wtp's job with it, the terminal back with wtp
    t.expect(r"\[stopped; terminal with wtp\]")
    t.type("yes\n")  # the shell put the job in the foreground again: the command has the terminal
    t.expect("got: yes")
    t.expect(r"\[exit 0; terminal with wtp\]")


def test_a_lost_remote_gate_gives_the_terminal_back(
    remote_repo: Repo, terminal: list[Terminal], tmp_path: Path
) -> None:
    remote_repo.write(".wtp.toml", "[gate]\nlease = 3\n")
    hang = Hang(tmp_path)
    try:
        t = _answered(terminal, remote_repo, TWICE, "--remote")
        t.expect(r"Again\? ")
        hang.on(remote_repo, "receivepack")  # renewals never get an answer: the lease runs out
        t.expect("lost remote gate 'deploy' while its command ran")
        t.expect(r"\[exit 1; terminal with wtp\]")
    finally:
        hang.end()


def test_many_malformed_tickets_are_said_in_one_line(remote_repo: Repo) -> None:
    tickets = [{"bogus": n} for n in range(2000)]
    plant(remote_repo, "refs/wtp/gates/deploy", json.dumps({"v": 1, "name": "deploy", "token": 3, "tickets": tickets}))
    out = remote_repo.wtp_proc("gate", "deploy", "--remote", "--", "true")
    assert out.code == 0, out.err
    assert out.err.splitlines()[0] == (
        "ignored 2000 tickets of remote gate 'deploy' (refs/wtp/gates/deploy on origin) that wtp does not write "
        "(ticket 1: 'id' must be a non-empty string, not null; and the others); "
        "they go with the next change to the gate"
    )
    assert "ticket 2" not in out.err  # before: one line per ticket


def _timed_out(remote_repo: Repo, *args: str) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    out = remote_repo.wtp_proc(*args, timeout=90)
    return out.code, out.out, out.err, time.monotonic() - t0


def test_timeout_bounds_the_push_that_joins_a_remote_gates_queue(remote_repo: Repo, tmp_path: Path) -> None:
    hang = Hang(tmp_path)
    hang.on(remote_repo, "receivepack")  # the remote lists its refs, and never answers a push
    try:
        code, out, err, took = _timed_out(remote_repo, "gate", "deploy", "--remote", "--timeout", "2", "--", "true")
    finally:
        hang.end()
    assert (code, out) == (3, ""), err
    assert err.count("\n") == 1 and err.startswith(
        "wtp: timed out after 2s waiting for remote gate 'deploy': remote 'origin' did not answer within"
    ), err
    assert took < WITHIN  # before: [remote] timeout (30 s)
    assert hang.started() and not any(_alive(p) for p in hang.started())


def test_ctrl_c_of_a_waiter_whose_remote_died_ends_within_seconds_and_says_its_ticket_is_left(
    remote_repo: Repo, tmp_path: Path
) -> None:
    other = clone(remote_repo, "other")
    a = tmp_path / "a"
    holder = remote_repo.spawn("gate", "deploy", "--remote", "--", "sh", "-c", holding(a))
    hang = Hang(tmp_path)
    try:
        wait_for(lambda: a.with_suffix(".token").exists(), "the holder")
        waiter = other.spawn("gate", "deploy", "--remote", "--", "true", new_session=True)
        wait_for(lambda: len(_tickets(remote_repo, ["--remote"])) == 2, "the waiter to queue")
        hang.on(other)  # the waiter's remote goes dead: each read and push hangs ([remote] timeout 30 s)
        wait_for(hang.started, "the waiter to ask the dead remote")
        t0 = time.monotonic()
        os.killpg(waiter.pid, signal.SIGINT)
        _, err = waiter.communicate(timeout=90)
        took = time.monotonic() - t0
    finally:
        hang.end()
        a.with_suffix(".go").write_text("")
    assert waiter.returncode == 130, err
    assert took < WITHIN, (took, err)  # before: 30 s in silence
    assert err.splitlines()[-3:] == [
        "removing our ticket from remote gate 'deploy' (for up to 5s)",
        "left our ticket in remote gate 'deploy' on 'origin' ('origin' did not answer in time): it expires, and "
        "the next caller drops it, once it has stood first in line for a lease (30s) without renewal",
        "wtp: interrupted",
    ]
    assert holder.wait(timeout=60) == 0
    holder.communicate()
    assert len(_tickets(remote_repo, ["--remote"])) == 1  # what the line said: the waiter's ticket is left


@pytest.mark.parametrize(
    ("sig", "ends"),
    [(signal.SIGTERM, "130"), (signal.SIGHUP, "130"), (signal.SIGQUIT, "-3")],
    ids=["term", "hup", "quit"],
)
def test_a_signal_that_ends_wtp_gives_the_terminal_back_first(
    remote_repo: Repo, terminal: list[Terminal], sig: signal.Signals, ends: str
) -> None:
    """Review 33: SIGTERM (as SIGHUP and SIGQUIT) ended wtp with the terminal still the
    command's, whose group then died: the script that ran 'wtp gate' read nothing more (EIO).
    SIGTERM and SIGHUP now end the command and the gate as Ctrl-C does (exit 130)."""
    t = Terminal(remote_repo.path, "gate", "deploy", "--", "sh", "-c", PROMPT)
    terminal.append(t)
    t.expect(r"Continue\? ")
    if sig == signal.SIGQUIT:
        # SIGQUIT ends wtp at once, as it always did: only once wtp has set up the command (its
        # record written) does it take the terminal back first.  SIGTERM and SIGHUP are sent
        # as soon as the command prompts, wtp setting it up yet or not.
        wait_for(
            lambda: list((remote_repo.path / ".git" / "wtp" / "gates").glob("*/command.json")), "the command set up"
        )
    os.kill(t.wtp, sig)
    t.expect(rf"\[exit {ends}; terminal with wtp\]")
    wait_for(lambda: _tickets(remote_repo, []) == [], "the gate free")


@pytest.mark.parametrize("at_a_terminal", [False, True], ids=["unattended", "terminal"])
def test_sigterm_to_a_remote_gate_holder_ends_its_command_and_takes_its_ticket_out(
    remote_repo: Repo, tmp_path: Path, terminal: list[Terminal], at_a_terminal: bool
) -> None:
    """Review 34: a remote gate holder ended by SIGTERM (a CI runner cancelling its job) left
    its ticket on the remote, so every other clone waited a whole lease for a holder that was
    gone.  Now SIGTERM is Ctrl-C there: the command's group is ended, then the ticket taken out."""
    a = tmp_path / "a"
    args = ("gate", "deploy", "--remote", "--", "sh", "-c", holding(a))
    if at_a_terminal:
        t = Terminal(remote_repo.path, *args)
        terminal.append(t)
        pid = t.wtp
    else:
        p = remote_repo.spawn(*args, new_session=True)
        pid = p.pid
    wait_for(lambda: a.with_suffix(".token").exists(), "the holder's command")
    assert len(_tickets(remote_repo, ["--remote"])) == 1
    os.kill(pid, signal.SIGTERM)
    if at_a_terminal:
        t.expect(r"\[exit 130; terminal with wtp\]")
    else:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 130, err
        assert err.splitlines()[-1] == "wtp: interrupted", err
    assert _tickets(remote_repo, ["--remote"]) == []  # taken out before wtp ended: nobody waits a lease
    a.with_suffix(".go").write_text("")  # the command, had it lived on, would write .done now
    other = clone(remote_repo, "other")
    out = other.wtp_proc("gate", "deploy", "--remote", "--timeout", "20", "--", "true")
    assert out.code == 0, out.err
    assert not a.with_suffix(".done").exists()  # ended with its group, not left running past its gate


@pytest.mark.parametrize("piped", [True, False], ids=["pipeline", "output-to-a-file"])
def test_in_a_pipeline_the_command_does_not_take_the_terminal(remote_repo: Repo, tmp_path: Path, piped: bool) -> None:
    """Review 33: 'wtp gate ... | less' handed the terminal to the command's group, so the
    pager (the pipeline's own job) was stopped reading its keys.  With stdout a pipe, the
    terminal stays with the pipeline's job, as before.  Review 34: with stdout a file, the
    command still gets it (it may prompt on the terminal: sudo, ssh, terraform apply > log)."""
    out_file = tmp_path / "out"
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(remote_repo.path)
            gate = f"{sys.executable} -m worktree_par gate deploy -- sh -c 'ps -o tpgid=,pgid= -p $$'"
            script = f"{gate} | cat; echo done" if piped else f"{gate} > {out_file}; cat {out_file}; echo done"
            os.execv("/bin/sh", ["sh", "-c", script])
        finally:
            os._exit(127)
    out = b""
    try:
        while b"done" not in out:
            assert select.select([fd], [], [], 60)[0], out
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    tpgid, pgid = out.decode().split()[:2]
    assert (tpgid != pgid) == piped, out  # whether the command's group is the terminal's foreground one


def test_a_join_push_the_remote_took_unanswered_takes_its_ticket_out(remote_repo: Repo, tmp_path: Path) -> None:
    """Review 33: the push that joins the queue reached the remote, whose answer never came
    (a post-receive hook that hangs once): --timeout ended wtp without a word of the ticket,
    and the next caller waited a whole lease behind it.  It is taken out, as after any wait."""
    from .conftest import end_pids

    assert remote_repo.remote is not None
    pids, once = tmp_path / "hook.pids", tmp_path / "hung-once"
    hook = remote_repo.remote / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nif [ ! -e {once} ]; then touch {once}; echo $$ >> {pids}; exec sleep 120; fi\n")
    hook.chmod(0o755)
    try:
        code, out, err, took = _timed_out(remote_repo, "gate", "deploy", "--remote", "--timeout", "2", "--", "true")
    finally:
        end_pids(pids)
    assert (code, out) == (3, "") and once.exists(), err
    assert took < WITHIN, err
    assert _tickets(remote_repo, ["--remote"]) == [], err  # before: our ticket, first in line


def test_the_next_holder_waits_for_the_command_a_killed_holder_left_running(repo: Repo, tmp_path: Path) -> None:
    """Review 31: a holder's wtp killed frees the gate at once, and its command is ended by its
    guardian a moment later: with the guardian slow to run (here: stopped), the next holder's
    command ran beside it.  One command per gate at a time: the next one waits for it, within
    its --timeout, and one that gives up leaves the record for the one after it."""
    a_pid, stop = tmp_path / "a.pid", tmp_path / "stop"
    # A's command: a shell whose child runs on (as a deploy's steps do) until the test says stop.
    inner = f"while [ ! -e {stop} ]; do sleep 0.05; done"
    a = repo.spawn("gate", "deploy", "--", "sh", "-c", f"echo $$ > {a_pid}; sh -c '{inner}'")
    wait_for(lambda: a_pid.exists() and a_pid.read_text().strip(), "A's command to run")

    def holder(name: str, *timeout: str) -> tuple[subprocess.Popen[bytes], Path]:
        errs = tmp_path / f"{name}.err"
        with errs.open("w") as f:
            argv = ["gate", "deploy", *timeout, "--", "touch", str(tmp_path / f"{name}.ran")]
            return subprocess.Popen([sys.executable, "-m", "worktree_par", *argv], cwd=repo.path, stderr=f), errs

    b, b_err = holder("b", "--timeout", "5")
    c: subprocess.Popen[bytes] | None = None
    guardian = 0
    try:
        wait_for(lambda: len(_tickets(repo, [])) == 2, "B waiting for the gate")
        kids = Path(f"/proc/{a.pid}/task/{a.pid}/children").read_text().split()
        guardian = next(int(k) for k in kids if int(k) != int(a_pid.read_text()))
        os.kill(guardian, signal.SIGSTOP)  # a guardian slow to be scheduled, as under load
        os.kill(a.pid, signal.SIGKILL)
        a.wait()  # (its pipes stay open in the command it left: not read here)
        wait_for(lambda: "left running" in b_err.read_text(), "B waiting for A's command")
        assert b.wait(timeout=60) == 3  # its --timeout ran out while A's command ran
        assert b_err.read_text().splitlines()[-1].endswith("still runs"), b_err.read_text()
        assert not (tmp_path / "b.ran").exists()
        c, c_err = holder("c")
        wait_for(lambda: "left running" in c_err.read_text(), "C waiting for A's command too")
        stop.write_text("")  # A's command ends; then C runs
        assert c.wait(timeout=60) == 0
        assert (tmp_path / "c.ran").exists()
    finally:
        stop.write_text("")  # A's command ends, if it still runs
        if guardian:
            os.kill(guardian, signal.SIGCONT)  # then its guardian, which A's death told to end
        for p in (b, c):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        for pipe in (a.stdout, a.stderr):
            if pipe is not None:
                pipe.close()
