"""Re-execution: running finished jobs again to check the results their nodes reported."""
