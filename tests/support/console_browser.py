"""The console in memory as one browser tab sees it (StubTreq, a cookie jar, the CSRF token),
and the two-center configuration and password the console tests log in with."""
import re

from treq.testing import StubTreq

GOOD = "correct horse battery"
INI = """[daemon]
state_dir = {dir}
[console]
max_failures = 3
idle_minutes = 10
login_per_minute = 50
[center:nj]
name = 南京住房公积金管理中心
signature = 南京公积金
[center:sz]
name = 苏州住房公积金管理中心
signature = 苏州公积金
"""


class Browser:
    """A StubTreq with a cookie jar and the form's CSRF token, like one browser tab."""

    def __init__(self, resource):
        self.treq = StubTreq(resource)
        self.cookies: dict[str, str] = {}
        self.csrf = None

    def _keep(self, response):
        for header in response.headers.getRawHeaders(b"set-cookie", []):
            name, value = header.decode().split(";")[0].split("=", 1)
            self.cookies[name] = value
        return response

    def get(self, path):
        return self._fetch("GET", path)

    def post(self, path, form, csrf=True):
        data = dict(form)
        if csrf and self.csrf:
            data["csrf"] = self.csrf
        return self._fetch("POST", path, data)

    def _fetch(self, method, path, data=None):
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items() if v)
        d = self.treq.request(method, "http://console" + path, data=data,
                              headers={"cookie": cookie} if cookie else None,
                              allow_redirects=False)
        self.treq.flush()
        response = self._keep(self.treq_result(d))
        body = self.treq_result(response.text("utf-8"))
        found = re.search(r'name="csrf" value="([^"]+)"', body)
        if found:
            self.csrf = found.group(1)
        return response.code, response, body

    def treq_result(self, d):
        self.treq.flush()
        box = []
        d.addBoth(box.append)
        assert box, "no answer"
        if hasattr(box[0], "raiseException"):
            box[0].raiseException()
        return box[0]

    def login(self, name, password=GOOD):
        return self.post("/login", {"username": name, "password": password})
