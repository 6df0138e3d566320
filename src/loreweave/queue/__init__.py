"""The queues: task rows in the database are the truth; a backend only says "there is work"."""
