"""A person's retry or skip of a failed job: one use case, whatever the job's kind.

What a retry means beyond making the job pending again is the kind's (``JobKind.on_retry``: a
set-aside note event goes back in its place); this module only finds the job, lets its kind
prepare, acts, syncs the notes a retry took back and tells the workers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from loreweave.memory.ports import QueueName, UnitOfWorkFactory
from loreweave.memory.transcript import TranscriptService
from loreweave.queue import jobs
from loreweave.queue.notify import Notifier, wake_all
from loreweave.queue.status import job_dict

Action = Literal["retry", "skip"]


@dataclass(frozen=True)
class JobActions:
    uow: UnitOfWorkFactory
    kinds: jobs.Kinds
    transcript: TranscriptService
    notifier: Notifier

    def act(
        self, action: Action, job_id: uuid.UUID, *, by: str, queue: QueueName | None = None
    ) -> dict[str, Any]:
        """Retry or skip a failed job in one transaction; the job as it is now.  ``queue``: the
        job must be of it (else NotFound); 409 (Conflict) unless it is failed."""
        with self.uow() as uow:
            if queue is None:
                kind, row = self.kinds.find(uow.session, job_id)
            else:
                kind = self.kinds.named(queue)
                row = uow.session.get(kind.model, job_id)
            reverted = None
            if action == "retry" and row is not None:  # the kind's own preparation first
                reverted = kind.on_retry(uow, row, self.kinds.models)
            if action == "retry":
                done = jobs.retry(uow.session, kind, job_id)
            else:
                done = jobs.skip(uow.session, kind, job_id, by)
            job = job_dict(kind, done)
            uow.commit()
        if reverted is not None:
            self.transcript.sync(row.session_id, reverted)
        wake_all(self.notifier, self.kinds.names)  # a retried job is ready; a skip unblocks
        return job
