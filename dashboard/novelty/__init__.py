"""Novelty: how much of a job's result is new data rather than a copy of its inputs, of
blessed content or of earlier results, measured after the job on the copy index."""
