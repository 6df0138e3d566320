"""The core: composite documents, analysis, note rewrites and entity creation."""
