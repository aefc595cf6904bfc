"""A phase-diagram sweep on a dask.distributed cluster (one trajectory per cell).

Needs the extra: ``pip install 'exactdyn[dask]'``. With no argument this starts a local
cluster; give a scheduler address (``tcp://host:8786``) to use a running one. The cache
folder makes the sweep resumable: run it twice, the second run computes nothing.

CLI equivalent::

    exactdyn phase-diagram linear1d --x sigma_u=1e-2:1e1:log:12 --y kappa=1e-2:1e1:log:10 \\
        --fixed width=64 --scheduler tcp://host:8786 --cache cells --data pd.json

Run: ``python examples/dask_phase_diagram.py [ADDRESS]``
"""

import sys

import numpy as np
from distributed import Client, LocalCluster

import exactdyn as ed

if __name__ == "__main__":
    if len(sys.argv) > 1:
        client = Client(sys.argv[1])
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1,
                                     dashboard_address=None))
    with client:
        pd = ed.phase_diagram(ed.Linear1D, x=("sigma_u", np.geomspace(1e-2, 1e1, 12)),
                              y=("kappa", np.geomspace(1e-2, 1e1, 10)), fixed={"width": 64},
                              executor=client.get_executor(), cache="examples/output/cells")
    print(pd.counts(), "failures:", pd.failures, "computed now:", pd.meta["computed"])
