"""The daemon's own metrics: HTTP answers by door and status class, the IVR reply time."""
from __future__ import annotations

from prometheus_client import generate_latest
from twisted.internet.task import Clock

from common.metrics import Metrics, Status
from daemon import http_door


def test_http_answers_are_counted_by_door_and_status_class():
    """The counter a site reports to labels each answer with its door and status class; the
    HTTP listener's paths under /v1/messages are the SMS door's, the rest the HTTP API's."""
    metrics = Metrics(Status(None), lambda session, now: {}, Clock())
    count = metrics.http_counter(http_door)
    for path, code in ((b"/v1/messages", 202), (b"/v1/messages/7", 404), (b"/v1/codes", 500),
                       (b"/v1/messagesX", 404), (b"/metrics", 200)):
        count(path, code)
    text = generate_latest(metrics.registry).decode()
    assert 'hotline_http_responses_total{code="2xx",listener="door"} 1.0' in text
    assert 'hotline_http_responses_total{code="4xx",listener="door"} 1.0' in text
    assert 'hotline_http_responses_total{code="5xx",listener="api"} 1.0' in text
    assert 'hotline_http_responses_total{code="4xx",listener="api"} 1.0' in text
    assert 'hotline_http_responses_total{code="2xx",listener="api"} 1.0' in text


def test_ivr_reply_times_fill_a_histogram():
    """Reply times observed land in the histogram's buckets (the 100 ms bucket is the one
    Asterisk's manager patience makes interesting)."""
    metrics = Metrics(Status(None), lambda session, now: {}, Clock())
    for seconds in (0.004, 0.02, 0.3):
        metrics.ivr_reply.observe(seconds)
    text = generate_latest(metrics.registry).decode()
    assert 'hotline_ivr_reply_seconds_bucket{le="0.005"} 1.0' in text
    assert 'hotline_ivr_reply_seconds_bucket{le="0.1"} 2.0' in text
    assert 'hotline_ivr_reply_seconds_count 3.0' in text
