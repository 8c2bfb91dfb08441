"""Reports: terminal rendering (`terminal`) now; the HTML report with plots comes with `simcert report`."""

from .terminal import SearchProgress, compress_summary_line, plain_result, render_model_info, render_result

__all__ = ["SearchProgress", "compress_summary_line", "plain_result", "render_model_info", "render_result"]
