"""How the driver lets go of Ray when a sweep ends: `ray.shutdown()`, or nothing at all where the
embedded Ray's processes can simply end with the driver.

Ray starts the embedded Ray's GCS and raylet to share the driver's fate: on Linux the kernel kills
them when the driver ends (PR_SET_PDEATHSIG; `Node.kernel_fate_share`), and the raylet's workers
end with the raylet, as do hypersweep's stand-ins for Ray's agents (lean_start.py). Ray's own
agents, which run with the dashboard, outlived a killed raylet here (they wait on the GCS, gone
too). Two cases leave the processes to end with the driver:
- the GCS is gone (lost_ray.py): Ray's shutdown would wait seconds on it;
- the process ends as soon as the sweep has printed its outcome (the command line, one sweep per
  process: launch.py), and the dashboard is off. `ray.shutdown()` took 0.31 s of every command's
  end here, 0.25 s of it in the driver's own core worker, whose RPC client polls its queue every
  250 ms and is joined only after its next poll ends; the processes it stops would end a moment
  later anyway.
"""

import atexit

from hypersweep.lost_ray import embedded_gcs_lost

_ends_with_process = False


def end_embedded_ray_with_process() -> None:
    """Say that this process ends once its sweep is done: an embedded Ray is then left to end
    with it rather than shut down (where the kernel ends Ray's processes with the driver)."""
    global _ends_with_process
    _ends_with_process = True


def shut_down_ray(agents_end_with_raylet: bool) -> None:
    """`ray.shutdown()`, unless the embedded Ray's GCS is gone, or its processes are left to end
    with this one (`end_embedded_ray_with_process`) and its agents end with its raylet (Ray's
    own, with the dashboard, do not)."""
    import ray
    from ray._private import worker

    node = worker._global_node  # Ray 2.x; tests check it is still there
    # Where the kernel does not end Ray's processes with the driver (a Ray without the attribute
    # too: tests/test_ray_end.py notices), Ray's own shutdown stops them.
    ends_with_driver = node is not None and node.head and getattr(node, "kernel_fate_share", False)
    if embedded_gcs_lost() or (_ends_with_process and ends_with_driver and agents_end_with_raylet):
        _leave_to_process_end()
    else:
        ray.shutdown()


def _leave_to_process_end() -> None:
    """Take off the exit handlers that would stop the embedded Ray one process at a time.

    Ended before the driver, the raylet would be seen gone by Ray's core, which then ends the
    driver with exit code 1, at once: before the outcome is printed, or before the exit code is
    set. So the node's own handler at exit does nothing, and Ray's and Ray Tune's (its shutdown;
    the removal of the trainables registered in the GCS, which ends with it) are taken off.
    """
    from ray._private import worker
    from ray.tune import registry

    worker._global_node.kill_all_processes = lambda *args, **kwargs: None
    atexit.unregister(worker.shutdown)
    atexit.unregister(registry._unregister_all)
