"""A phase-diagram sweep on a dask.distributed cluster (one trajectory per cell).

Needs the extra: ``pip install 'exactdyn[dask]'``. Without ``--scheduler`` this starts an
in-process local cluster (one worker, two threads: it shows the executor path and exits
cleanly, with no worker processes to stop); give a scheduler address (``tcp://host:8786``)
to run on a real cluster's worker processes. The cache folder ``DIR/cells`` makes the sweep
resumable: run it twice with the same ``--out``, the second run computes nothing.

CLI equivalent::

    exactdyn phase-diagram linear1d --x sigma_u=1e-2:1e1:log:12 --y kappa=1e-2:1e1:log:10 \\
        --fixed width=64 --scheduler tcp://host:8786 --cache cells --data pd.json

Run: ``python examples/dask_phase_diagram.py [--out DIR] [--scheduler ADDRESS]`` ->
DIR/cells (the cache), DIR/phase_diagram.json (default DIR: a new temporary directory);
run time: about 5 s with the local
cluster (measured).
"""

import sys
from contextlib import ExitStack

import numpy as np
from _out import out_dir, parser
from distributed import Client, LocalCluster

import exactdyn as ed


def main(argv=None):
    p = parser(__doc__, "dask_phase_diagram")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="address of a running dask scheduler (default: a local cluster)")
    args = p.parse_args(argv)
    out = out_dir(args.out, "dask_phase_diagram")
    with ExitStack() as stack:
        # Close the client, then the local cluster, in that order: the workers stop
        # cleanly instead of being killed at interpreter exit.
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=1, threads_per_worker=2,
                                                       processes=False,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        pd = ed.phase_diagram(ed.Linear1D, x=("sigma_u", np.geomspace(1e-2, 1e1, 12)),
                              y=("kappa", np.geomspace(1e-2, 1e1, 10)), fixed={"width": 64},
                              executor=client.get_executor(), cache=out / "cells")
    pd.to_json(out / "phase_diagram.json")
    print(pd.counts(), "failures:", pd.failures, "computed now:", pd.meta["computed"])
    print(f"wrote {out / 'phase_diagram.json'} (cache in {out / 'cells'})")


if __name__ == "__main__":
    main(sys.argv[1:])
