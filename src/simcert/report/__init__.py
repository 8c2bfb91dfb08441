"""Reports: terminal rendering (`terminal`), the self-contained HTML report (`html`) and its figures (`plots`)."""

from .terminal import SearchProgress, compress_summary_line, plain_result, render_model_info, render_result

__all__ = ["SearchProgress", "compress_summary_line", "plain_result", "render_model_info", "render_result"]
