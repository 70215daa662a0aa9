"""The job server: small duties behind one start/stop protocol, composed by :class:`Server`.

=============  =================================================================
``producer``   claims jobs for free slots, sleeps on the storage's waker
``executor``   runs each claimed job as a task (sync targets in a thread pool)
``outcomes``   what a run's end is written as (success, failure, retry)
``writer``     writes outcomes in batches (group commit), tells the filters
``stager``     due scheduled jobs → Enqueued; due recurring jobs fired
``lifeline``   requeues the jobs of servers that stopped heart-beating
``pruner``     deletes finished jobs past their time (expiry)
``heartbeat``  the server's heartbeat, in its own thread
=============  =================================================================

Every duty is a :class:`~diquis.jobs.server.duty.Duty`: ``start()`` and ``stop()``. The
server starts them in order and stops them in reverse, so fetching stops first and the
heartbeat last (a job still finishing during shutdown keeps its server alive).
"""

from .duty import Duty, Io, Periodic
from .server import Server

__all__ = ["Duty", "Io", "Periodic", "Server"]
