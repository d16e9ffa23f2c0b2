"""``wtp check --test``: semantic collisions, found by running the gate on merges of live work.

trees.py      -- the merge of a set of tasks' snapshots onto the base, the throw-away
                 worktree it is gated in (made and removed by wtp), its port and environment;
runs.py       -- gate runs, at most ``budget`` at once, each in its own process group;
search.py     -- the culprit search (whole set, each task alone, pairs, larger sets);
result.py     -- the result, its JSON, and the last result kept for 'wtp list';
report.py     -- the result as text, below the collision table;
background.py -- ``[check] test = "auto"``: one low-priority run at a time, cancelled
                 when its inputs change.
"""
