"""The remote wing: what wtp keeps on the git remote to coordinate clones on other
machines, behind one network boundary (gitops.remote: every call under a deadline).

``identity`` (this clone's id, bound to the clone), ``observed`` (when this clone first saw
a record, on its own clock), ``gates`` (remote gates: compare-and-swap tickets, leases,
fencing tokens), ``holding`` (a command run holding one, its lease renewed) and ``sharing``
(shared claims, and what doctor finds among them).  Every record read from the remote is
checked by ``records`` (below the wing) before use.
"""
