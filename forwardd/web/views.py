"""The page's view models: a plan, the daemon's state and an instant -> plain data for the templates.

One module per view (``week``, ``status``, ``history``, ``health``), each a pure function of what it is
handed (the only I/O is the journal that the status and history views read), so that each view is
tested without a server or a browser; people-facing words come from ``forwardd.web.presentation``. This
module gathers their public names.
"""

from __future__ import annotations

from .health import Health, health
from .history import HistoryRow, HistoryView, history_view
from .presentation import Names
from .snapshot import Snapshot
from .status import CalendarRow, ClusterRow, NextChange, StatusRow, StatusView, cluster_row, status_view
from .week import Block, Day, Handover, Lane, WeekView, plan_warnings, week_count, week_view, when

__all__ = ["Block", "CalendarRow", "ClusterRow", "Day", "Handover", "Health", "HistoryRow", "HistoryView", "Lane",
           "Names", "NextChange", "Snapshot", "StatusRow", "StatusView", "WeekView", "cluster_row", "health",
           "history_view", "plan_warnings", "status_view", "week_count", "week_view", "when"]
