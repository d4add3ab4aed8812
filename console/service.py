"""The console's own listener (``[console] listen``), apart from the API port, and the timer
that folds finalised SMS into the report rollups and refreshes published SMS templates."""
from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.internet.endpoints import serverFromString
from twisted.web.http import combinedLogFormatter

from common.masking import mask_text
from common.web import GuardedSite
from console.door_page import DoorPages
from console.optout_page import OptOutPages
from console.reports_page import ReportPages
from console.rollup import fold_sms, zones
from console.search_page import SearchPages
from console.templates_page import TemplatePages, apply_published, published
from console.users_page import UserPages
from console.web import MAX_BODY, Console

log = Logger(namespace="hotline.console")
ROLLUP_INTERVAL = 5.0  # seconds between SMS rollup folds
UPLOAD_SECONDS = 60.0  # a request (a prompt upload) must arrive whole within this


def make_service(config, reactor, db, status, metrics, templates=None):
    """The console's listener and its rollup timer; ``templates`` is the running outbox's
    TemplateSet (None without SMS), which published template edits change."""
    console = Console(config, db, reactor, status)
    if config.prompts is not None:
        from console.prompts_page import PromptPages

        PromptPages(console, reactor).mount()
    ReportPages(console).mount()
    SearchPages(console).mount()
    UserPages(console).mount()
    if templates is not None:
        TemplatePages(console, templates).mount()
        OptOutPages(console).mount()
        DoorPages(console, templates).mount()
    http = config.http  # the API's limits, but uploads of prompts may be larger and slower
    site = GuardedSite(console, reactor, max_body=MAX_BODY,
                       read_timeout=max(http.read_timeout, UPLOAD_SECONDS),
                       idle_timeout=http.idle_timeout,
                       per_peer_connections=http.per_peer_connections,
                       per_peer_rate=http.per_peer_requests_per_second,
                       log_formatter=masked_log_line,
                       on_response=metrics.http_counter(lambda _path: "console")
                       if metrics is not None else None)
    top = MultiService()
    top.setName("console")
    listener = StreamServerEndpointService(serverFromString(reactor, config.console.listen), site)
    listener.setServiceParent(top)
    fold = TimerService(ROLLUP_INTERVAL, _tick, db, reactor, zones(config), templates)
    fold.clock = reactor
    fold.setServiceParent(top)
    return top


def masked_log_line(timestamp: str, request) -> str:
    """The access log line, with any mobile or ID number in the URL (a search) masked."""
    return mask_text(combinedLogFormatter(timestamp, request))


def _tick(db, clock, centers, templates) -> Deferred:
    return Deferred.fromCoroutine(_refresh(db, clock, centers, templates))


async def _refresh(db, clock, centers, templates) -> None:
    """Fold the SMS finalised since the last run into the report rollups, and apply the
    template texts published (here or by another daemon sharing the database)."""
    try:
        await db.run(fold_sms, clock.seconds(), centers)
        if templates is not None:
            apply_published(templates, await db.run(published))
    except SQLAlchemyError:
        log.failure("report rollup or template refresh failed; retried next time")
