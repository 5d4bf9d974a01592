"""The Bacalhau bridges: the job-selection probe, the orchestrator scanner and the legacy
requester API, with Bacalhau's JSON read once."""
