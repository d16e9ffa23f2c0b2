"""Tasks found in git and not in the registry: a wtp worktree adopted ('wtp doctor --fix
--adopt'), or every one of them registered again after the state file was lost; and a task
whose worktree git has elsewhere (moved: followed there) or nowhere (made again)."""

from __future__ import annotations

from pathlib import Path

from . import gitops
from .errors import Refusal, WtpError
from .repo import Ctx
from .state import ACTIVE, FINAL, State, Task


def adopt(ctx: Ctx, name: str, path: Path) -> str:
    from .repo import validate_branch, validate_name

    validate_name(name)
    validate_branch(ctx, name, ctx.detect_base())  # never the base: a registry no wtp writes (state.py)
    with ctx.store.transaction() as st:
        if name in st.tasks and st.tasks[name].state not in FINAL:  # registered meanwhile
            raise Refusal(f"task '{name}' is {st.tasks[name].state} already")
        st.tasks[name] = _registered(ctx, st, name, path, gitops.head(path)[0], ctx.detect_base())
    return f"adopted {path} as task '{name}'"


def could_be_task(ctx: Ctx, name: str, base: str | None = None) -> bool:
    """Whether a branch named ``branch_prefix + name`` could be a task's: a valid name whose
    branch is not the base (what the registry's own check requires: state.py)."""
    from .repo import validate_branch, validate_name

    try:
        validate_name(name)
        validate_branch(ctx, name, ctx.detect_base() if base is None else base)
    except WtpError:
        return False
    return True


def _registered(ctx: Ctx, st: State, name: str, path: Path, head: str | None, base: str) -> Task:
    """An active task for a wtp worktree found in git (adopted, or rebuilt after a lost registry)."""
    from . import schedule

    return Task(
        name=name,
        state=ACTIVE,
        branch=ctx.branch_of(name),
        base=base,
        seq=st.next_seq(),
        path=str(path),
        fork=gitops.merge_base(ctx.root, ctx.base_tip_ref(base), head) if head else None,
        port=schedule.free_port(st, ctx.cfg.port_base),
    )


def rebuild(ctx: Ctx) -> str:
    """A registry rebuilt from git alone, after the state file was lost: every wtp worktree
    becomes an active task again, and a task branch without a worktree is named.  A worktree
    whose branch no task could have (a name outside the rules, the base itself with an empty
    branch_prefix) is left as it is and named: registered, it would make the new registry one
    no wtp writes, and every command refuse it (doctor --fix would go round)."""
    prefix = f"refs/heads/{ctx.cfg.branch_prefix}"
    base = ctx.detect_base()
    branches = gitops.refs_under(ctx.root, prefix)
    by_branch = {w.branch: w for w in ctx.worktrees() if w.branch}
    root = ctx.worktree_root()
    names: list[str] = []
    odd: list[str] = []
    with ctx.store.transaction() as st:
        for ref in sorted(branches):
            name = ref[len(prefix) :]
            w = by_branch.get(ref)
            if name in st.tasks or w is None or w.path.parent != root:
                continue
            if not could_be_task(ctx, name, base):
                odd.append(f"{w.path} ({ref[len('refs/heads/') :]})")
                continue
            st.tasks[name] = _registered(ctx, st, name, w.path, w.head, base)
            names.append(name)
    loose = sorted(r[len(prefix) :] for r in branches if r not in by_branch)
    said = f"rebuilt the registry from git: {len(names)} task(s) ({', '.join(names) or 'none'})"
    if loose:
        said += f"; task branches without a worktree, kept as they are: {', '.join(loose)}"
    if odd:
        said += f"; worktrees on branches no task could have, left as they are: {', '.join(odd)}"
    return said


def checked_out(ctx: Ctx, t: Task) -> tuple[Path | None, bool]:
    """Where git has the task's branch checked out, and whether that is a worktree of its own
    (moved with 'git worktree move'), not the user's checkout or another task's folder."""
    wts = ctx.worktrees()
    theirs = {ctx.root, wts[0].path if wts else ctx.root}  # the main checkout
    theirs |= {Path(o.path) for o in ctx.store.read().tasks.values() if o.path and o.name != t.name}
    on = [w.path for w in wts if w.branch == f"refs/heads/{t.branch}" and w.path.is_dir()]
    return (on[0], on[0] not in theirs) if on else (None, False)


def recreate(ctx: Ctx, t: Task) -> str:
    on, moved = checked_out(ctx, t)
    if on and moved:  # moved with 'git worktree move': followed there, not made again
        ctx.store.update(t, path=str(on))
        return f"the worktree of '{t.name}' was moved to {on}: recorded there"
    if on:  # the user's checkout, or another task's folder: never taken for this task's worktree
        raise Refusal(f"branch '{t.branch}' is checked out in {on}, not a worktree of '{t.name}': switch it first")
    gitops.worktree(ctx.root, ["prune"], ctx.worktree_lock)
    assert t.path is not None
    Path(t.path).parent.mkdir(parents=True, exist_ok=True)
    gitops.worktree(ctx.root, ["add", "--quiet", t.path, t.branch], ctx.worktree_lock)
    return f"recreated the worktree of '{t.name}' at {t.path} from its branch"
