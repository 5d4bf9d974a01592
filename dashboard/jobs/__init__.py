"""Jobs: submission, claims, results, and a job as the API shows it."""
