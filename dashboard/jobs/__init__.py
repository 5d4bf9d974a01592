"""Jobs: submission, the queue, results, the bundled executor's worker."""
