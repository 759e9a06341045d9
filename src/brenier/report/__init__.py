"""What brenier shows: pictures (`plots`), the one-page HTML report of an AE-OT model (`page`),
the written analysis of a point cloud (`analysis`) and the built-in demonstration (`demo`)."""

from .page import METRIC_COLUMNS, build_report, image_grid, save_grid

__all__ = ["METRIC_COLUMNS", "build_report", "image_grid", "save_grid"]
