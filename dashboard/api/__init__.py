"""API plumbing shared by every domain's views: fields, permissions, errors, schema."""
