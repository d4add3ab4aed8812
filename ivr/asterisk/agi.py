"""AsyncAGI call driver: one AgiSession per channel, commands over AMI, results by CommandID.

A session sends ``Action: AGI`` with a unique CommandID and waits for the
matching ``AsyncAGIExec`` event (routed to it by ``ivr.asterisk.calls``). Every argument
is quoted and escaped the way res_agi's parser reads it, and CR/LF are refused,
so nothing a caller or the core sends can inject a command. When the channel
leaves AGI (``AsyncAGIEnd``, hangup) every pending and later command fails with
``CallHungUp``, the one exception a flow lets through to end cleanly.

A short AMI blip is invisible to the flow of a ``resumable`` session: a command
or action that meets the lost connection waits (``suspend``) until the
dispatcher finds the channel still in AGI and calls ``resume``, which also sends
again a command whose result was lost (the caller hears the menu or the reading
again), after a probe, never blindly: a command cut before Asterisk's reply may be
queued already; a session the dispatcher gives up ends with ``AgiLinkLost``.

The helpers below (``stream_file``, ``get_data``, ``play``, ``record_file`` ...)
are the API the IVR and prompt-recording flows are written against.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from twisted.internet.defer import Deferred, FirstError, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.masking import mask_text
from common.pending import PendingRequests
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiActionError, AmiConnectionLost, AmiError


class AgiError(Exception):
    """Base of the AGI driver's typed failures."""


class CallHungUp(AgiError):
    """The channel hung up or left AGI: the flow ends here, cleanly."""


class AgiCommandTimeout(AgiError):
    """No AsyncAGIExec for a command within its timeout."""


class AgiCommandFailed(AgiError):
    """Asterisk answered 510 (unknown command), 520 (usage) or refused to queue the command."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class AgiLinkLost(AgiError):
    """The AMI link dropped while the command was pending; the call is left for recovery."""


class UnsafeAgiArgument(AgiError):
    """An argument holds CR, LF or NUL, or an application argument holds a separator."""


class AmiSender(Protocol):
    def action(self, name: str, headers: dict[str, str] | None = None,
               variables: dict[str, str] | None = None, timeout: float | None = None
               ) -> Deferred: ...


# ---- pure helpers --------------------------------------------------------------

def quote(arg: str) -> str:
    """One AGI argument, double-quoted with ``\\`` and ``"`` escaped (res_agi parse_args)."""
    if any(c in arg for c in "\r\n\0"):
        raise UnsafeAgiArgument(f"AGI argument holds CR, LF or NUL: {mask_text(arg[:60])!r}")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(verb: str, *args: str) -> str:
    """``verb`` is ours (fixed words); every argument is quoted."""
    return " ".join([verb, *(quote(str(a)) for a in args)])


DIGITS_VARIABLE = "HOTLINE_DIGITS"
# A file list longer than this is parked in channel variables HOTLINE_PROMPTS1.. (AMI
# Setvar) and played by one Exec that expands them: every AMI line, the AGI "Command:"
# too, must fit Asterisk's 1024-byte manager input buffer.
LINE_CHARS = 900
PROMPTS_VARIABLE = "HOTLINE_PROMPTS"
OWNER_VARIABLE = "HOTLINE_AGI"  # the dialplan names the driving daemon here while AGI runs
_APP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.()]*$")


def chunk_files(files: list[str], limit: int) -> list[list[str]]:
    """Consecutive files grouped so each group, '&'-joined, stays within ``limit`` chars."""
    chunks: list[list[str]] = []
    size = 0
    for f in files:
        if not chunks or size + 1 + len(f) > limit:
            chunks.append([])
            size = -1
        chunks[-1].append(f)
        size += 1 + len(f)
    return chunks


def app_args(*args: str) -> str:
    """Application arguments joined by commas; a comma, pipe or ``$`` inside one is refused."""
    for a in args:
        if any(c in a for c in ",|$\r\n\0"):
            raise UnsafeAgiArgument(f"application argument holds a separator: {mask_text(a[:60])!r}")
    return ",".join(args)


@dataclass(frozen=True)
class AgiResult:
    """A parsed AGI answer: ``200 result=12 (timeout) endpos=8000``."""

    code: int
    result: str | None = None
    data: str | None = None
    endpos: int | None = None
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def int_result(self) -> int:
        try:
            return int(self.result or "0")
        except ValueError:
            return 0


_RESULT = re.compile(r"^result=(?P<result>\S*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?\s*$",
                     re.S)


def parse_result(text: str) -> AgiResult:
    """Parse the (URL-decoded) text of an AsyncAGIExec Result."""
    text = text.strip("\r\n")
    match = re.match(r"^(\d{3})[ -]?(.*)$", text, re.S)
    if match is None:
        return AgiResult(code=0, text=text)
    code, rest = int(match.group(1)), match.group(2)
    if code == 200:
        body = _RESULT.match(rest.split("\n", 1)[0])
        if body is not None:
            endpos = body.group("endpos")
            return AgiResult(200, body.group("result"), body.group("data"),
                             int(endpos) if endpos is not None else None, text)
    return AgiResult(code, None, None, None, text)


def parse_env(env: str) -> dict[str, str]:
    """The URL-encoded ``Env`` of AsyncAGIStart as a dict (``agi_channel`` ...)."""
    out: dict[str, str] = {}
    for line in unquote(env).split("\n"):
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value
    return out


def env_args(env: dict[str, str]) -> list[str]:
    """``agi_arg_1``, ``agi_arg_2`` ... in order, as a list."""
    numbered = []
    for key, value in env.items():
        m = re.fullmatch(r"agi_arg_(\d+)", key)
        if m:
            numbered.append((int(m.group(1)), value))
    return [v for _, v in sorted(numbered)]


@dataclass(frozen=True)
class DigitsResult:
    """Digits typed (``#`` not included); ``timed_out``: the caller stopped typing before
    ``#`` or the maximum (digits may still hold what was typed)."""

    digits: str
    timed_out: bool


# ---- the session ---------------------------------------------------------------

class AgiSession:
    """One channel in AsyncAGI. Build it from AsyncAGIStart with ``from_start``."""

    log = Logger()
    _ids = itertools.count(1)

    def __init__(self, ami: AmiSender, channel: str, env: dict[str, str], clock: IReactorTime,
                 command_timeout: float = 60.0, id_prefix: str = "cmd"):
        self.ami = ami
        self.clock = clock
        self.channel = channel
        self.env = env
        self.uniqueid = env.get("agi_uniqueid", "")
        self.caller_id = env.get("agi_callerid", "")
        self.dnid = env.get("agi_dnid", "")
        self.language = env.get("agi_language", "en")
        self.args = env_args(env)
        self.command_timeout = command_timeout
        self._prefix = id_prefix
        self._pending: PendingRequests[str] = PendingRequests(
            clock, lambda verb, _seconds: AgiCommandTimeout(f"{channel}: no result for {verb}"))
        self.ended = False
        self.left = False
        self.resumable = False  # set by a dispatcher that resumes sessions after a blip
        self._link_back: Deferred | None = None  # while suspended: fires on resume
        self._resumes = 0  # counts resumes: a probe outlived by a later one stands down
        self._response_timeout_s: float | None = None
        self._digit_timeout_s: float | None = None
        # Told the seconds from a result to the next command (the metrics' IVR latency).
        self.on_reply: Callable[[float], None] | None = None
        self._result_at: float | None = None

    @classmethod
    def from_start(cls, ami: AmiSender, event: Message, clock: IReactorTime,
                   command_timeout: float = 60.0, id_prefix: str = "cmd") -> AgiSession:
        env = parse_env(event.get("Env", "") or "")
        channel = event.get("Channel") or env.get("agi_channel", "")
        env.setdefault("agi_uniqueid", event.get("Uniqueid", "") or "")
        return cls(ami, channel, env, clock, command_timeout, id_prefix)

    # ---- events (called by the dispatcher) ----
    def handle_exec(self, event: Message) -> bool:
        """Resolve the command this AsyncAGIExec answers; False if it is not ours."""
        command_id = event.get("CommandID") or ""
        if command_id not in self._pending:
            return False
        self._result_at = self.clock.seconds()  # before the flow, which may reply at once
        return self._pending.resolve(command_id,
                                     parse_result(unquote(event.get("Result", "") or "")))

    def end(self, error: AgiError | None = None) -> None:
        """The channel left AGI (or the link is gone): fail everything pending and later."""
        self.ended = True
        error = error or CallHungUp(f"{self.channel} hung up")
        self._pending.fail_all(lambda _verb: error)
        back, self._link_back = self._link_back, None
        if back is not None:
            back.errback(Failure(error))

    # ---- a link blip (called by the dispatcher) ----
    @property
    def suspended(self) -> bool:
        return self._link_back is not None

    def suspend(self) -> None:
        """The AMI link is down: commands and actions wait for ``resume`` (or ``end``)."""
        if self._link_back is None and not self.ended:
            self._link_back = Deferred()
        self._result_at = None  # the wait for the link is no reply time

    def resume(self) -> None:
        """The link is back and the channel still in AGI: commands wait no more, and those
        Asterisk may hold are settled (``_settle_lost``) before anything is sent again."""
        unsettled = [key for key, _verb in self._pending.outstanding()
                     if self._pending.get(key).data[1] != _UNSENT]
        self._resumes += 1
        back, self._link_back = self._link_back, None
        if back is not None:
            back.callback(None)
        if unsettled:
            Deferred.fromCoroutine(self._settle_lost(unsettled, self._resumes)) \
                .addErrback(_already_reported)

    async def _settle_lost(self, unsettled: list[str], resume: int) -> None:
        """A command still running answers on the new connection; one that finished during
        the blip lost its answer; one whose AGI action met the cut may or may not be queued
        (sending it again blindly could run it twice: a second Read would take the keys
        meant for the next menu). A NOOP queued behind them tells: results come in order,
        so one still waiting when the NOOP answers did not run or lost its answer. A Read
        Asterisk had accepted kept what the caller keyed in its variables, so it counts as
        done (nothing is asked again); any other command is sent again (the caller hears
        the reading or the menu again)."""
        await self.run("NOOP")
        if resume != self._resumes:
            return  # another blip during the probe: the later resume settles them
        for key in unsettled:
            request = self._pending.get(key)
            if request is None:
                continue
            text, held = request.data
            if held == _ACCEPTED and text.startswith(_READS):
                self._pending.resolve(key, parse_result("200 result=0"))
            else:
                self._resend(key, request.data)

    def _resend(self, command_id: str, state: list) -> None:
        state[1] = _IN_DOUBT  # until Asterisk says it queued it
        self._send(command_id, state[0]).addCallbacks(
            lambda _: state.__setitem__(1, _ACCEPTED), self._resend_failed,
            errbackArgs=(command_id,))

    def _resend_failed(self, failure: Failure, command_id: str) -> None:
        if failure.check(AmiConnectionLost):
            return  # another blip: the next resume sends it again
        failure.trap(AmiError)
        self._pending.fail(command_id, CallHungUp(f"{self.channel}: {failure.value}"))

    async def _when_link_back(self, error: AmiError) -> None:
        """After a lost connection: wait for ``resume``; AgiLinkLost when not resumable
        or given up."""
        if self.ended or not self.resumable:
            raise AgiLinkLost(str(error))
        self.suspend()
        await self._link_back

    def _send(self, command_id: str, text: str) -> Deferred:
        return self.ami.action("AGI", {"Channel": self.channel, "Command": text,
                                       "CommandID": command_id})

    # ---- raw commands ----
    async def command(self, text: str, timeout: float | None = None) -> AgiResult:
        """Queue one already-formatted AGI command and wait for its AsyncAGIExec result."""
        if self.ended:
            raise CallHungUp(f"{self.channel} is no longer in AGI")
        if self._result_at is not None and self.on_reply is not None:
            self.on_reply(self.clock.seconds() - self._result_at)
        self._result_at = None
        command_id = f"{self._prefix}-{next(self._ids)}"
        # data: the text (sent again after a blip) and what Asterisk has of it
        state = [text, _UNSENT]
        d = self._pending.add(command_id, text.split(' "', 1)[0],
                              timeout if timeout is not None else self.command_timeout,
                              data=state)
        while state[1] == _UNSENT:
            sending = self._send(command_id, text)
            written = not sending.called  # a link already down refuses before writing
            try:
                await sending
                state[1] = _ACCEPTED
            except AmiActionError as e:
                self._pending.pop(command_id)
                d.addErrback(_already_reported)
                if "not exist" in e.message.lower() or self.ended:
                    raise CallHungUp(f"{self.channel}: {e.message}") from None
                raise AgiCommandFailed(f"AGI command refused: {e.message}") from None
            except AmiError as e:
                if written:  # cut before Asterisk's reply: ``resume`` settles it
                    state[1] = _IN_DOUBT
                try:
                    if not isinstance(e, AmiConnectionLost):
                        raise AgiLinkLost(str(e)) from None
                    await self._when_link_back(e)
                except AgiError:
                    self._pending.pop(command_id)
                    d.addErrback(_already_reported)
                    raise
        return await d

    async def run(self, verb: str, *args: str, timeout: float | None = None) -> AgiResult:
        """Send ``verb`` with quoted args; 511 means hung up, other non-200 codes raise."""
        result = await self.command(format_command(verb, *args), timeout)
        if result.code == 511:
            raise CallHungUp(f"{self.channel}: dead channel")
        if result.code != 200:
            raise AgiCommandFailed(f"{verb}: {result.text.splitlines()[0] if result.text else result.code}",
                                   result.code)
        return result

    # ---- the flow API ----
    async def stream_file(self, prompt: str, escape_digits: str = "") -> str | None:
        """Play one file; the key that interrupted it, or None."""
        result = await self.run("STREAM FILE", prompt, escape_digits)
        code = result.int_result
        if code < 0:
            self.log.warn("STREAM FILE {prompt} failed on {channel}", prompt=prompt,
                          channel=self.channel)
            return None
        return chr(code) if code > 0 else None

    async def _ami(self, name: str, headers: dict[str, str]) -> Message:
        """An AMI action on this channel that does not queue behind the running AGI command
        (sent again after a blip: the ones used here may be repeated)."""
        while True:
            try:
                return await self.ami.action(name, {"Channel": self.channel, **headers})
            except AmiActionError as e:
                raise CallHungUp(f"{self.channel}: {e.message}") from None
            except AmiConnectionLost as e:
                await self._when_link_back(e)
            except AmiError as e:
                raise AgiLinkLost(str(e)) from None

    def _ahead(self, name: str, headers: dict[str, str]) -> Deferred:
        """An ``_ami`` action sent now, its answer awaited later: Asterisk runs one
        session's actions in order, so what is sent before a command has taken effect
        when the command is queued, without a round trip each in between."""
        return Deferred.fromCoroutine(self._ami(name, headers))

    def _set_timeouts(self, response_s: float, digit_s: float | None) -> list[Deferred]:
        """The Setvars for the timeouts that change, sent ahead of the Read."""
        sent = []
        if response_s != self._response_timeout_s:
            sent.append(self._ahead("Setvar", {"Variable": "TIMEOUT(response)",
                                               "Value": f"{response_s:g}"}))
            self._response_timeout_s = response_s
        if digit_s is not None and digit_s != self._digit_timeout_s:
            sent.append(self._ahead("Setvar", {"Variable": "TIMEOUT(digit)",
                                               "Value": f"{digit_s:g}"}))
            self._digit_timeout_s = digit_s
        return sent

    async def get_data(self, prompts: list[str], timeout_ms: int, max_digits: int,
                       inter_digit_ms: int | None = None) -> DigitsResult:
        """Play ``prompts`` with barge-in on all of them and collect up to ``max_digits``.

        res_agi drops DTMF between commands, so prompts and collection must be one
        command. AGI GET DATA plays a single file (seen on 22.10: ``a&b`` "does not
        exist") and ties the first-digit to the inter-digit timeout, so this runs
        the Read application: ``timeout_ms`` waits for the first digit after the
        last prompt (TIMEOUT(response)), ``inter_digit_ms`` or the channel's
        TIMEOUT(digit) between digits, ``#`` ends input. Timeouts and the result
        travel as AMI Setvar/Getvar, which do not wait behind AGI commands.
        """
        result = await self._exec_files("Read", (DIGITS_VARIABLE,), prompts,
                                        (str(max_digits), "", "1", ""),
                                        timeout=self.command_timeout + timeout_ms / 1000,
                                        timeouts=(timeout_ms / 1000, inter_digit_ms / 1000
                                                  if inter_digit_ms else None))
        if result.result == "-1":
            raise CallHungUp(f"{self.channel} hung up during input")
        keyed, ended = await _answers([self._ahead("Getvar", {"Variable": DIGITS_VARIABLE}),
                                       self._ahead("Getvar", {"Variable": "READSTATUS"})])
        digits, status = keyed.get("Value") or "", ended.get("Value") or ""
        # May be a password: cleared, after it was read, ahead of the next command.
        self._ahead("Setvar", {"Variable": DIGITS_VARIABLE, "Value": ""}) \
            .addErrback(_already_reported)
        if status == "HANGUP":
            raise CallHungUp(f"{self.channel} hung up during input")
        if status not in ("OK", "TIMEOUT"):
            raise AgiCommandFailed(f"Read ended with status {status or 'unknown'}")
        return DigitsResult(digits, status == "TIMEOUT")

    async def play(self, prompts: list[str]) -> None:
        """Play files without barge-in (``EXEC Playback f1&f2``); a hang-up during them
        (the application returns -1) raises CallHungUp, as during input."""
        if prompts:
            result = await self._exec_files("Playback", (), prompts, ())
            if result.result == "-1":
                raise CallHungUp(f"{self.channel} hung up during a prompt")

    async def _exec_files(self, app: str, before: tuple[str, ...], files: list[str],
                          after: tuple[str, ...], timeout: float | None = None,
                          timeouts: tuple[float, float | None] | None = None) -> AgiResult:
        """``app(before..., f1&f2..., after...)`` as one command, so a reading is never cut
        into parts with a gap between them (and never split inside a number).

        A list too long for one AMI line is parked in channel variables over AMI and
        played by ``Exec``, which expands them (AGI EXEC itself does not). Those Setvars,
        and the ``timeouts`` (response, digit) of a Read, are sent before the command on
        the same connection and answered while it is queued, not a round trip each
        before it. After a cut their resends (on ``resume``) go out before the NOOP probe
        that settles the command."""
        joined = app_args(*files).replace(",", "&")
        chunks: list[list[str]] = []
        if len(joined) <= LINE_CHARS:
            verb_args = (app, app_args(*before, joined, *after))
        else:
            chunks = chunk_files(files, LINE_CHARS)
            refs = "&".join(f"${{{PROMPTS_VARIABLE}{i}}}" for i in range(1, len(chunks) + 1))
            app_args(*before, *after)  # refuses separators, as in the direct form
            verb_args = ("Exec", f"{app}({','.join([*before, refs, *after])})")
        setting = self._set_timeouts(*timeouts) if timeouts is not None else []
        setting += [self._ahead("Setvar", {"Variable": f"{PROMPTS_VARIABLE}{i}",
                                           "Value": "&".join(chunk)})
                    for i, chunk in enumerate(chunks, 1)]
        command = Deferred.fromCoroutine(self.run("EXEC", *verb_args, timeout=timeout))
        return (await _answers([*setting, command]))[-1]

    async def record_file(self, path: str, fmt: str, escape_digits: str, timeout_ms: int,
                          beep: bool = True, silence_s: int | None = None) -> AgiResult:
        """Record to ``path`` (no extension) until a key, ``timeout_ms`` or ``silence_s`` of quiet."""
        args = [path, fmt, escape_digits, str(int(timeout_ms))]
        if beep:
            args.append("BEEP")
        elif silence_s is not None:
            args.append("0")  # sample offset: keeps the silence argument in its place
        if silence_s is not None:
            args.append(f"s={int(silence_s)}")
        return await self.run("RECORD FILE", *args,
                              timeout=self.command_timeout + timeout_ms / 1000)

    async def set_variable(self, name: str, value: str) -> None:
        if not _NAME.match(name):
            raise UnsafeAgiArgument(f"bad variable name {name!r}")
        await self.run("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        if not _NAME.match(name):
            raise UnsafeAgiArgument(f"bad variable name {name!r}")
        result = await self.run("GET VARIABLE", name)
        return result.data if result.result == "1" else None

    async def exec(self, app: str, *args: str) -> AgiResult:
        """Run a dialplan application; arguments may not hold ``,`` ``|`` or ``$``."""
        if not _APP.match(app):
            raise UnsafeAgiArgument(f"bad application name {app!r}")
        if args:
            return await self.run("EXEC", app, app_args(*args))
        return await self.run("EXEC", app)

    async def hangup(self) -> None:
        if not self.ended:
            await self.run("HANGUP")

    async def redirect(self, context: str, exten: str, priority: int | str = 1) -> None:
        """Move the channel now with AMI Redirect, interrupting a running command.

        For recovery: a command queued behind a running Read or Playback would
        wait for it, a Redirect does not.
        """
        await self._ami("Setvar", {"Variable": OWNER_VARIABLE, "Value": ""})
        await self._ami("Redirect", {"Context": context, "Exten": exten, "Priority": str(priority)})
        self.left = True

    async def leave(self, context: str, exten: str, priority: int | str = 1) -> None:
        """Continue in the dialplan at context,exten,priority and end AsyncAGI."""
        await self._ami("Setvar", {"Variable": OWNER_VARIABLE, "Value": ""})
        await self.exec("Goto", context, exten, str(priority))
        self.left = True
        try:
            await self.run("ASYNCAGI BREAK")
        except CallHungUp:
            pass  # AsyncAGIEnd may come before (or instead of) the BREAK's result


# What Asterisk has of a pending command: nothing yet, maybe (its AGI action met a cut
# before the reply), or queued.
_UNSENT, _IN_DOUBT, _ACCEPTED = "unsent", "in doubt", "accepted"
# get_data's Read, direct or through Exec: its outcome is in DIGITS_VARIABLE and READSTATUS.
_READS = ('EXEC "Read" ', 'EXEC "Exec" "Read(')


async def _answers(deferreds: list[Deferred]) -> list:
    """Every answer, or the first failure; the others' failures are consumed, so a flow
    sees one error and none is left unhandled."""
    try:
        return await gatherResults(deferreds, consumeErrors=True)
    except FirstError as e:
        e.subFailure.raiseException()


def _already_reported(failure: Failure) -> None:
    """A result Deferred failed by ``end()`` while its AGI action was refused: the
    refusal is what the flow sees, so this second report of the same hangup is dropped."""
    failure.trap(AgiError)
