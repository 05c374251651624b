"""Report layer: charts (``charts.ChartGenerator``) and the self-contained HTML report."""

from typing import TYPE_CHECKING

from botclave_cli.lazy import lazy_names

if TYPE_CHECKING:
    from botclave_cli.report.charts import ChartGenerator

__all__ = ["ChartGenerator"]
__getattr__, __dir__ = lazy_names(__name__, {
    "ChartGenerator": "botclave_cli.report.charts",
})
