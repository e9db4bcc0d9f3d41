"""The report: reproduction table, methods comparison, figures and provenance, as Markdown and self-contained HTML."""
