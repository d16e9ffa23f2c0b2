"""The land wing: ``wtp land`` and the queue behind it.

Read it bottom-up: ``request`` (what a lander asks for, typed, also handed to a detached
child), ``entry`` (one task in a conductor's stack), ``verdicts`` (gate verdicts by tree),
``status`` (what 'wtp queue' shows), ``settle`` (an entry's outcome in the state),
``candidate`` (building and gating a candidate), ``publish`` (the one publication point:
the only code that moves or pushes the base), ``speculate`` and ``batch`` (how a stack is
verified), ``recovery`` (finishing or rolling back a dead land), ``queue`` (the conductor),
``prepare`` (a lander before it joins the queue) and ``lander`` (the front: join the queue,
conduct or follow, report).
"""
