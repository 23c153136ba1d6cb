"""Starting or joining Ray for the `--ray` paths (`dataset`, `batch`); nothing else imports Ray.

Without an address (or with "local") a Ray is started on this machine, with this checkout on its
workers' path. With an address the command joins that cluster and ships this checkout as the job's
working directory; the clips, datasets and outputs must then be on a filesystem every node sees.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Heavy or private folders that never travel to a cluster with the checkout.
NOT_SHIPPED = [".git", ".venv", ".tiny-models", "outputs", "docs/screenshots", "models", "datasets"]


RAY_MISSING = ("Ray is not installed; add it with `pip install -r requirements-scale.txt` "
               "(or `pip install .[ray]`), or leave out --ray to run in this process")


def require_ray() -> None:
    """Refuse `--ray` at once when Ray cannot be imported: checked before a jobs file or clip is
    read and before any model loads, so a missing extra costs nothing."""
    from .errors import InputError

    try:
        import ray  # noqa: F401
    except ImportError:
        raise InputError(RAY_MISSING, "--ray") from None


def init_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Start (local) or join (address) Ray; True when this call started it, so the caller shuts it down."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "local":
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"working_dir": str(ROOT), "excludes": NOT_SHIPPED})
    else:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False,
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    return True
