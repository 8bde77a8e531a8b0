"""The widgets' stylesheet: compact rows, tabs, the list/detail split, dashboard cards; one ``<style>`` per widget.

Stock ipywidgets only: the CSS travels in an HTML widget, every rule scoped under ``.bullpy-widget``. The
inspector's split is a wrapping row-reverse flex box: list left and detail right while both fit (about
930 px), else the detail on top; a container query turns the sticky detail into a plain block there.
"""

from __future__ import annotations

import re
from typing import Any

from .. import _display as D
from ._common import W

_STATE_RULES = "".join(
    f".bullpy-tab-{s}.bullpy-tab-current{{border-bottom-color:{c}}}.bullpy-count-{s}.jupyter-button{{border-left-color:{c}}}"
    for s, c in D.STATE_COLORS.items()
)

_RULES = D.DETAIL_CSS + """
.bullpy-widget{font-size:13px;overflow:visible;--jp-widgets-inline-height:26px;--jp-widgets-inline-margin:3px}
.bullpy-widget .jupyter-widget-box,.bullpy-widget .widget-box{overflow:visible}
.bullpy-widget .jupyter-button{width:auto;flex:none;padding:0 8px}
.bullpy-widget .jupyter-button.bullpy-icon{width:30px;padding:0}
.bullpy-widget .jupyter-button.bullpy-icon i.fa{margin:0}
.bullpy-widget .jupyter-widget-dropdown,.bullpy-widget .widget-dropdown{width:auto;flex:none}
.bullpy-widget .jupyter-widget-dropdown select,.bullpy-widget .widget-dropdown select{max-width:170px}
.bullpy-widget .jupyter-widget-text,.bullpy-widget .widget-text{width:130px;flex:none}
.bullpy-widget .bullpy-search{width:auto;flex:1 1 200px;min-width:150px;max-width:380px}
.bullpy-widget .jupyter-widget-checkbox,.bullpy-widget .widget-checkbox{width:auto;flex:none}
.bullpy-toolbar,.bullpy-header,.bullpy-tabs{flex-wrap:wrap;align-items:center;gap:2px 4px}
.bullpy-header .jupyter-widget-html,.bullpy-header .widget-html{flex:none}
.bullpy-widget .bullpy-status{flex:1 1 auto;text-align:right}
.bullpy-chip{background:#eee;border-radius:8px;padding:0 6px;font-size:90%;color:#555}
.bullpy-tabs{border-bottom:1px solid #ddd;gap:0;margin-bottom:2px}
.bullpy-widget .bullpy-tab.jupyter-button{background:transparent;border-radius:0;border-bottom:3px solid transparent;
  height:30px;margin:0 1px;font-variant-numeric:tabular-nums}
.bullpy-widget .bullpy-tab.jupyter-button.bullpy-tab-current{font-weight:600;background:#f3f5f8}
.bullpy-confirm{border:1px solid #d62728;border-radius:3px;padding:2px 6px;background:#fff5f5}
.bullpy-report:empty{display:none}
.bullpy-split{flex-direction:row-reverse;flex-wrap:wrap;align-items:flex-start;gap:6px 12px;container-type:inline-size}
.bullpy-list{flex:3 1 540px;min-width:0}
.bullpy-side-pane{flex:2 1 360px;min-width:0;box-sizing:border-box;position:sticky;top:4px;max-height:calc(100vh - 12px);
  overflow:auto !important;border:1px solid #ccd6e0;border-radius:4px;padding:2px 8px 6px;
  background:var(--jp-layout-color0,#fff);z-index:1}
@container (max-width:920px){.bullpy-side-pane{position:static;max-height:60vh}}
.bullpy-detail-head{align-items:center;justify-content:space-between}
.bullpy-detail-table{table-layout:fixed;width:100%;border-collapse:collapse}
.bullpy-detail-table th{width:7.5em;text-align:left;vertical-align:top;padding:2px 6px 2px 0;color:#444;font-weight:600}
.bullpy-detail-table td{vertical-align:top;padding:2px 0;overflow-wrap:anywhere;min-width:0}
.bullpy-editor textarea{font-family:var(--jp-code-font-family,monospace);font-size:12px}
.bullpy-widget .bullpy-editor-field{width:100%}
.bullpy-jobs{gap:0}
.bullpy-row{--jp-widgets-inline-height:22px;--jp-widgets-margin:0px;height:24px;align-items:center;gap:4px;
  border-bottom:1px solid #f0f0f0;padding-left:2px}
.bullpy-row:hover{background:#f7f9fc}
.bullpy-row.bullpy-row-picked{background:#fffbe6}
.bullpy-row.bullpy-row-shown{background:#e7f0fa;box-shadow:inset 3px 0 0 #1f77b4}
.bullpy-widget .bullpy-row .bullpy-check{width:18px;flex:none;overflow:hidden}
.bullpy-row .bullpy-check{align-items:center}.bullpy-row .bullpy-check input{margin:0;height:14px;align-self:center}
.bullpy-widget .bullpy-row .jupyter-button.bullpy-job-id{width:84px;padding:0 4px;text-align:left;background:transparent;
  color:#1f77b4;text-decoration:underline;font-family:var(--jp-code-font-family,monospace);font-size:12px}
.bullpy-line,.bullpy-row-head{flex:1 1 auto;min-width:0}
.bullpy-line .jupyter-widget-html-content,.bullpy-line .widget-html-content,.bullpy-row-head .jupyter-widget-html-content,
.bullpy-row-head .widget-html-content{min-width:0;overflow:hidden}
.bullpy-row-head{--jp-widgets-inline-height:22px;border-bottom:1px solid #ccc}
.bullpy-line-box{display:flex;gap:8px;align-items:center;white-space:nowrap;min-width:0;overflow:hidden}
.bullpy-line-box .bc{flex:none;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bullpy-line-box code{font-size:12px;background:none;padding:0}
.bullpy-row-head .bc{color:#555;font-weight:600;font-size:12px}
.bc-gap{width:108px}.bullpy-widget.bullpy-readonly .bc-gap{width:86px}
.bc-state{width:72px}.bc-name{width:92px}.bc-age{width:52px}.bc-when{width:78px}
.bc-att{width:34px;text-align:right}.bc-prog{width:80px}
.bullpy-line-box .bullpy-badge{font-size:11px}
.bullpy-line-box .bc-data{flex:3 1 0;min-width:60px}.bullpy-line-box .bc-reason{flex:2 1 0;min-width:60px}
.bullpy-list{container-type:inline-size}
@container (max-width:660px){.bullpy-line-box .bc-state,.bullpy-line-box .bc-when{display:none}}
.bullpy-empty{padding:6px 0}
.bullpy-dashboard-head{align-items:center}
.bullpy-queue-panel{border:1px solid #dde3ea;border-radius:6px;padding:4px 10px 8px;margin:6px 0}
.bullpy-panel-body{flex-wrap:wrap;gap:4px 18px;align-items:flex-start}
.bullpy-panel-stats{flex:1 1 380px;min-width:0}
.bullpy-panel-chart{flex:1 1 480px;min-width:0;max-width:720px}
.bullpy-panel-body .jupyter-widget-html-content,.bullpy-panel-body .widget-html-content,.bullpy-redis .jupyter-widget-html-content,
.bullpy-redis .widget-html-content,.bullpy-detail .jupyter-widget-html-content,.bullpy-detail .widget-html-content,
.bullpy-campaign-counts .jupyter-widget-html-content,.bullpy-campaign-counts .widget-html-content,
.bullpy-campaign-rate .jupyter-widget-html-content,.bullpy-campaign-rate .widget-html-content,
.bullpy-campaign-failures .jupyter-widget-html-content,.bullpy-campaign-failures .widget-html-content{line-height:1.5}
.bullpy-counts-row{flex-wrap:wrap;gap:4px}
.bullpy-widget .bullpy-count.jupyter-button{height:30px;border-left:4px solid #999;background:#f5f7fa;border-radius:3px;
  font-variant-numeric:tabular-nums;padding:0 10px}
.bullpy-kv{border-collapse:collapse;margin:4px 0}
.bullpy-kv th{color:#555;font-weight:normal;text-align:left;white-space:nowrap;padding:1px 14px 1px 0}
.bullpy-kv td{padding:1px 0;font-variant-numeric:tabular-nums}
.bullpy-redis{border:1px solid #dde3ea;border-radius:6px;padding:4px 10px;margin:6px 0;background:#fafbfc}
.bullpy-chart svg{display:block;max-width:100%;height:auto}
.bullpy-dashboard-inspector{border-top:2px solid #1f77b4;margin-top:8px;padding-top:4px}
.bullpy-campaign-body{flex-wrap:wrap;gap:4px 24px;align-items:flex-start}
""" + _STATE_RULES

_RULE = re.compile(r"(@container[^{]*)\{((?:[^{}]*\{[^{}]*\})*)\}|([^{}]+)\{([^{}]*)\}")


def _scope(css: str) -> str:
    """Every selector under ``.bullpy-widget`` (which also makes it win over ipywidgets' one-class rules)."""
    def rule(match: re.Match[str]) -> str:
        if match.group(1):
            return f"{match.group(1).strip()}{{{_scope(match.group(2))}}}"
        selectors = [sel.strip() for sel in match.group(3).split(",")]
        scoped = [sel if sel.startswith(".bullpy-widget") else f".bullpy-widget {sel}" for sel in selectors]
        return f"{','.join(scoped)}{{{' '.join(match.group(4).split())}}}"
    return _RULE.sub(rule, css)


CSS = _scope(_RULES)


def stylesheet() -> Any:
    """An HTML widget holding the stylesheet (invisible; its rules apply wherever the widget is shown)."""
    style = W.HTML(f"<style>{CSS}</style>")
    style.add_class("bullpy-style")
    style.layout.display = "none"
    return style
