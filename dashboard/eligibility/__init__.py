"""Eligibility: the read side of the blessed-CID cache."""
