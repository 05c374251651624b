"""Report layer: charts and the self-contained HTML report."""
