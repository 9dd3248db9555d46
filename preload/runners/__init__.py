"""Where jobs run, side by side: each runner takes a run's jobs and the
worker side of its channel, and hands every job's outcome to the collector.
The parent side (collector, states, displays) never knows which runner runs
the jobs.

* ``pool.py``: process pools of our own, supervised (crashes, timeouts,
  memory limits, forced cancel);
* ``executor.py``: a caller's executor, or threads of our own.
"""
