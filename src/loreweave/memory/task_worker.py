"""What the two queue workers share: their collaborators, and recording a failed attempt."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

from loreweave.config import LLMConfig, QueueConfig
from loreweave.db.engine import Database
from loreweave.db.models import EntityCreationTask, NoteUpdateTask
from loreweave.errors import LoreweaveError
from loreweave.llm.types import ChatModel
from loreweave.queue import claims
from loreweave.queue.notify import Notifier
from loreweave.vectors.service import CompositeVectorService


class TaskWorker:
    def __init__(
        self,
        database: Database,
        chat_model: ChatModel,
        vectors: CompositeVectorService,
        llm_config: LLMConfig,
        queue_config: QueueConfig,
        notifier: Notifier,
    ) -> None:
        self.database = database
        self.chat_model = chat_model
        self.vectors = vectors
        self.llm_config = llm_config
        self.queue_config = queue_config
        self.notifier = notifier

    def record_failure(
        self,
        model: type[NoteUpdateTask] | type[EntityCreationTask],
        task_ids: Sequence[uuid.UUID],
        worker_id: str,
        exc: LoreweaveError,
    ) -> None:
        """Back to pending with back-off, or failed for good; only if the tasks are still ours."""
        with self.database.uow() as uow:
            if not claims.still_owned(uow.session, model, task_ids, worker_id):
                return
            tasks = [
                cast(NoteUpdateTask | EntityCreationTask, uow.session.get_one(model, task_id))
                for task_id in task_ids
            ]
            claims.fail_tasks(
                uow.session,
                tasks,
                str(exc),
                retriable=not claims.is_final(exc),
                max_retries=self.queue_config.max_retries,
                retry_delay=self.queue_config.retry_delay,
            )
            uow.commit()
