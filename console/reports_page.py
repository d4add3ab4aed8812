"""The report pages: hotline and SMS tables per day or month, per center or province-wide,
from the rollups (console.rollup), with charts and CSV and XLSX export."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from console import figures, rollup
from console.web import Reply, Route, arg

KINDS = ("calls", "keys", "sms", "filtered")
ROWS_SHOWN = 500  # on the page; the CSV and XLSX downloads carry every row


class ReportPages:
    def __init__(self, console):
        self.console = console

    def mount(self) -> None:
        self.console.add_page("/reports", Route(self.page), nav="reports")

    def _query(self, request, user):
        """The report asked for, or None when it names a center the user may not see."""
        mine = user.centers(self.console.config.centers)
        center = arg(request, "center") or ""
        if center and center not in mine:
            return None
        today = dt.datetime.fromtimestamp(self.console.clock.seconds(),
                                          ZoneInfo(self.console.menus.zone)).date()
        by = "month" if arg(request, "by") == "month" else "day"
        first = _date(arg(request, "first")) or (today.replace(day=1) if by == "day"
                                                 else today.replace(month=1, day=1))
        last = _date(arg(request, "last")) or today
        kind = arg(request, "kind") if arg(request, "kind") in KINDS else "calls"
        return {"kind": kind, "centers": [center] if center else mine, "center": center,
                "period": rollup.Period(by, first.isoformat(), last.isoformat()),
                "province": arg(request, "province") == "1" and not center,
                "detail": arg(request, "detail") == "1"}

    async def page(self, request, session) -> Reply:
        q = self._query(request, session.user)
        if q is None:
            return self.console.error_page(403, "forbidden", session.lang)
        if q["kind"] == "calls":
            rows = await self.console.db.run(rollup.calls_report, q["centers"], q["period"],
                                              not q["province"])
            columns, values = rollup.CALL_COLUMNS, [r["calls"] for r in rows]
        elif q["kind"] == "keys":
            rows = await self.console.db.run(rollup.keys_report, q["centers"], q["period"])
            columns, values = rollup.KEY_COLUMNS, [r["count"] for r in rows]
        elif q["kind"] == "sms":
            rows = await self.console.db.run(rollup.sms_report, q["centers"], q["period"],
                                              q["detail"])
            columns, values = rollup.SMS_COLUMNS, [r["pushed"] for r in rows]
        else:
            rows = await self.console.db.run(rollup.filtered_report, q["centers"],
                                              q["period"], q["detail"])
            columns, values = rollup.FILTER_COLUMNS, [r["filtered"] for r in rows]
        fmt = arg(request, "format")
        name = f"{q['kind']}-{q['period'].by}-{q['period'].first}-{q['period'].last}"
        if fmt == "csv":
            return Reply(rollup.to_csv(rows, columns), content_type=b"text/csv; charset=utf-8",
                         headers={b"content-disposition":
                                  f'attachment; filename="{name}.csv"'.encode()})
        if fmt == "xlsx":
            return Reply(rollup.to_xlsx(rows, columns, name),
                         content_type=b"application/vnd.openxmlformats-officedocument."
                                      b"spreadsheetml.sheet",
                         headers={b"content-disposition":
                                  f'attachment; filename="{name}.xlsx"'.encode()})
        query = request.uri.decode("utf-8", "replace").partition("?")[2]
        return Reply(self.console.page(
            "reports.html", session, q=q, rows=rows[:ROWS_SHOWN], total=len(rows),
            columns=columns,
            headings=rollup.HEADINGS, query=query,
            all_centers=session.user.centers(self.console.config.centers),
            chart=figures.chart(values[-31:], width=620) if values else None,
            chart_labels=[r["period"] for r in rows][-31:]))


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None
