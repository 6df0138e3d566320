"""The names of the core's three job kinds' queues, spelled here only.  A queue is named after
its job kind (the queue layer's registry holds the kinds); a job's outcome wakes the queues it
gave work.  A leaf: the command line reads these without importing the core."""

from __future__ import annotations

QueueName = str
ANALYSIS_QUEUE: QueueName = "analysis"
NOTE_UPDATE_QUEUE: QueueName = "note_updates"
ENTITY_CREATION_QUEUE: QueueName = "entity_creations"
