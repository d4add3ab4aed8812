"""The AsyncAGI driver: quoting against injection, result parsing, CommandID matching, hangups."""
from __future__ import annotations

from urllib.parse import quote as urlquote

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from ivr.asterisk.agi import (AgiCommandFailed, AgiCommandTimeout, AgiLinkLost, AgiSession, CallHungUp,
                     DigitsResult, UnsafeAgiArgument, format_command, parse_env, parse_result,
                     quote)
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiActionError, AmiConnectionLost


class FakeAmi:
    """Records AGI actions and answers them with 'Added AGI command to queue'."""

    def __init__(self):
        self.actions: list[dict] = []
        self.refuse: Exception | None = None
        self.vars: dict[str, str] = {}

    def action(self, name, headers=None, variables=None, timeout=None):
        self.actions.append({"Action": name, **(headers or {})})
        if self.refuse is not None:
            return fail(self.refuse)
        if name == "Getvar":
            value = self.vars.get(headers["Variable"], "")
            return succeed(Message([("Response", "Success"), ("Variable", headers["Variable"]),
                                    ("Value", value)]))
        return succeed(Message([("Response", "Success"), ("Message", "Added AGI command to queue")]))

    def agi(self):
        return [a for a in self.actions if a["Action"] == "AGI"]

    @property
    def last(self):
        return self.actions[-1]


ENV = ("agi_request: async\nagi_channel: PJSIP/anon-00000001\nagi_language: en\n"
       "agi_uniqueid: 1700000000.1\nagi_callerid: 13800138000\nagi_dnid: 12329\n"
       "agi_arg_1: node-a\nagi_arg_2: ivr\nagi_arg_3: gz\n\n")


def start_event():
    return Message([("Event", "AsyncAGIStart"), ("Channel", "PJSIP/anon-00000001"),
                    ("Uniqueid", "1700000000.1"), ("Env", urlquote(ENV))])


def make():
    ami, clock = FakeAmi(), Clock()
    return AgiSession.from_start(ami, start_event(), clock, command_timeout=30), ami, clock


def run(coro):
    d = Deferred.fromCoroutine(coro)
    out = []
    d.addBoth(out.append)
    return out


def answer(session, ami, result_text):
    cid = ami.agi()[-1]["CommandID"]
    session.handle_exec(Message([("Event", "AsyncAGIExec"), ("CommandId", cid),
                                 ("Result", urlquote(result_text))]))


def test_session_attributes_from_start():
    """Env is URL-decoded; args, caller id, dnid, uniqueid and language are exposed."""
    s, _, _ = make()
    assert s.channel == "PJSIP/anon-00000001"
    assert s.args == ["node-a", "ivr", "gz"]
    assert (s.caller_id, s.dnid, s.uniqueid, s.language) == ("13800138000", "12329",
                                                             "1700000000.1", "en")


def test_parse_env_handles_encoded_values():
    """Values with encoded colons and spaces survive decoding."""
    assert parse_env("agi_callerid%3A%20a%20b%0Aagi_arg_1%3A%20x%3Ay%0A") == {
        "agi_callerid": "a b", "agi_arg_1": "x:y"}


@pytest.mark.parametrize("text,code,result,data,endpos", [
    ("200 result=12\n", 200, "12", None, None),
    ("200 result=1 (timeout)\n", 200, "1", "timeout", None),
    ("200 result= (timeout)\n", 200, "", "timeout", None),
    ("200 result=0 endpos=8000\n", 200, "0", None, 8000),
    ("200 result=35 (dtmf) endpos=16000\n", 200, "35", "dtmf", 16000),
    ("200 result=1 (a (nested) value)\n", 200, "1", "a (nested) value", None),
    ("200 result=-1\n", 200, "-1", None, None),
    ("510 Invalid or unknown command\n", 510, None, None, None),
    ("511 Command Not Permitted on a dead channel or intercept routine\n", 511, None, None, None),
    ("520-Invalid command syntax.  Proper usage follows:\nUsage: x\n520 End of proper usage.\n",
     520, None, None, None),
])
def test_parse_result(text, code, result, data, endpos):
    """Result lines parse into code, result, parenthesised data and endpos."""
    r = parse_result(text)
    assert (r.code, r.result, r.data, r.endpos) == (code, result, data, endpos)


@pytest.mark.parametrize("evil", ['1" "2', "a\\", 'x\\" HANGUP "', "12 HANGUP"])
def test_quoting_keeps_one_argument(evil):
    """Quotes, backslashes and spaces stay inside a single quoted argument."""
    q = quote(evil)
    assert q.startswith('"') and q.endswith('"')
    # undo res_agi's parse: inside the quotes every \x is x
    body, out, esc = q[1:-1], "", False
    for ch in body:
        if esc:
            out, esc = out + ch, False
        elif ch == "\\":
            esc = True
        else:
            assert ch != '"', "an unescaped quote would end the argument"
            out += ch
    assert out == evil


@pytest.mark.parametrize("evil", ["a\nHANGUP", "a\rb", "a\0b"])
def test_newlines_rejected(evil):
    """CR, LF or NUL in any argument raise UnsafeAgiArgument before anything is sent."""
    with pytest.raises(UnsafeAgiArgument):
        format_command("STREAM FILE", evil, "")


def test_get_data_runs_read_with_barge_in_over_all_prompts():
    """get_data sets the first-digit timeout over AMI, runs one Read over all prompts,
    fetches digits and status over AMI and clears the digits variable."""
    s, ami, _ = make()
    ami.vars = {"HOTLINE_DIGITS": "12", "READSTATUS": "OK"}
    out = run(s.get_data(["welcome", "menu"], 5000, 4))
    assert ami.actions[0] == {"Action": "Setvar", "Channel": s.channel,
                              "Variable": "TIMEOUT(response)", "Value": "5"}
    assert ami.last["Command"] == 'EXEC "Read" "HOTLINE_DIGITS,welcome&menu,4,,1,"'
    answer(s, ami, "200 result=0\n")
    assert out == [DigitsResult("12", False)]
    assert [a["Action"] for a in ami.actions[-3:]] == ["Getvar", "Getvar", "Setvar"]
    assert ami.last == {"Action": "Setvar", "Channel": s.channel, "Variable": "HOTLINE_DIGITS",
                        "Value": ""}


def test_get_data_timeout_and_cached_timeouts():
    """READSTATUS TIMEOUT means the caller stopped typing; unchanged timeouts are not resent."""
    s, ami, _ = make()
    ami.vars = {"HOTLINE_DIGITS": "", "READSTATUS": "TIMEOUT"}
    out = run(s.get_data(["a"], 3000, 1, inter_digit_ms=1500))
    assert [a.get("Variable") for a in ami.actions] == ["TIMEOUT(response)", "TIMEOUT(digit)", None]
    answer(s, ami, "200 result=0\n")
    ami.vars = {"HOTLINE_DIGITS": "7", "READSTATUS": "TIMEOUT"}
    before = len(ami.actions)
    out2 = run(s.get_data(["b"], 3000, 2, inter_digit_ms=1500))
    assert ami.actions[before]["Action"] == "AGI"
    answer(s, ami, "200 result=0\n")
    assert out == [DigitsResult("", True)] and out2 == [DigitsResult("7", True)]


def test_get_data_hangup():
    """A Read ended by hangup (result -1 or READSTATUS HANGUP) raises CallHungUp."""
    s, ami, _ = make()
    out = run(s.get_data(["a"], 3000, 1))
    answer(s, ami, "200 result=-1\n")
    assert out[0].check(CallHungUp)
    s2, ami2, _ = make()
    ami2.vars = {"READSTATUS": "HANGUP"}
    out = run(s2.get_data(["a"], 3000, 1))
    answer(s2, ami2, "200 result=0\n")
    assert out[0].check(CallHungUp)


def test_matching_by_command_id_ignores_others():
    """An AsyncAGIExec with another CommandID does not resolve this session's command."""
    s, ami, _ = make()
    out = run(s.stream_file("hello", "12"))
    assert not s.handle_exec(Message([("Event", "AsyncAGIExec"), ("CommandID", "other"),
                                      ("Result", "200%20result%3D49%0A")]))
    assert out == []
    answer(s, ami, "200 result=49 endpos=100\n")
    assert out == ["1"]


def test_hangup_mid_command_raises_call_hung_up():
    """AsyncAGIEnd during a command fails it, and later commands, with CallHungUp."""
    s, ami, _ = make()
    out = run(s.play(["long-notice"]))
    assert ami.last["Command"] == 'EXEC "Playback" "long-notice"'
    s.end()
    assert out[0].check(CallHungUp)
    later = run(s.stream_file("x"))
    assert later[0].check(CallHungUp)
    assert len(ami.actions) == 1


def test_command_timeout_on_clock():
    """A command without a result fails with AgiCommandTimeout after its timeout."""
    s, ami, clock = make()
    out = run(s.stream_file("x"))
    clock.advance(29)
    assert out == []
    clock.advance(2)
    assert out[0].check(AgiCommandTimeout)


def test_code_511_is_hangup_and_510_is_failure():
    """A dead-channel answer is CallHungUp; an unknown command is AgiCommandFailed."""
    s, ami, _ = make()
    out = run(s.stream_file("x"))
    answer(s, ami, "511 Command Not Permitted on a dead channel\n")
    assert out[0].check(CallHungUp)
    out = run(s.exec("NoSuchApp"))
    answer(s, ami, "510 Invalid or unknown command\n")
    assert out[0].check(AgiCommandFailed) and out[0].value.code == 510


def test_ami_refusal_and_link_loss_are_typed():
    """A refused AGI action on a gone channel is CallHungUp; a lost link is AgiLinkLost."""
    s, ami, _ = make()
    ami.refuse = AmiActionError("AGI", "Channel does not exist.")
    assert run(s.stream_file("x"))[0].check(CallHungUp)
    ami.refuse = AmiConnectionLost("down")
    assert run(s.stream_file("x"))[0].check(AgiLinkLost)
    assert len(s._pending) == 0


def test_hangup_while_the_action_is_refused_is_reported_once():
    """The call ends while its AGI action is still unanswered and the action is then
    refused: the flow sees one CallHungUp and no failure is left unhandled."""
    import gc

    from twisted.logger import globalLogPublisher

    gc.collect()  # failures other tests left to the collector are theirs, not this one's
    s, ami, _ = make()
    answer_action: Deferred = Deferred()
    ami.action = lambda name, headers=None, variables=None, timeout=None: answer_action
    out = run(s.stream_file("x"))
    s.end()
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        answer_action.errback(AmiActionError("AGI", "Channel does not exist."))
        assert out[0].check(CallHungUp)
        del out
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert not [e for e in logged if e.get("log_failure") is not None]


def test_exec_refuses_separators_and_bad_names():
    """Application arguments may not smuggle extra arguments; names are checked."""
    s, ami, _ = make()
    assert run(s.exec("Playback", "a,skip"))[0].check(UnsafeAgiArgument)
    assert run(s.exec("Play back"))[0].check(UnsafeAgiArgument)
    assert run(s.set_variable("A;B", "x"))[0].check(UnsafeAgiArgument)
    assert ami.actions == []


def test_record_file_arguments():
    """RECORD FILE puts BEEP and s=N where res_agi looks for them."""
    s, ami, _ = make()
    run(s.record_file("/var/lib/hotline/rec/p1", "wav", "#", 60000, beep=True, silence_s=3))
    assert ami.last["Command"] == 'RECORD FILE "/var/lib/hotline/rec/p1" "wav" "#" "60000" "BEEP" "s=3"'
    run(s.record_file("/r/p2", "wav", "#", 1000, beep=False, silence_s=2))
    assert ami.last["Command"] == 'RECORD FILE "/r/p2" "wav" "#" "1000" "0" "s=2"'


def test_variables_and_leave():
    """get_variable returns the value or None; leave does Goto then ASYNCAGI BREAK."""
    s, ami, _ = make()
    out = run(s.get_variable("CHANNEL(state)"))
    answer(s, ami, "200 result=1 (Up)\n")
    out2 = run(s.get_variable("NOPE"))
    answer(s, ami, "200 result=0\n")
    assert out == ["Up"] and out2 == [None]
    done = run(s.leave("hotline-queue", "s", 1))
    assert ami.last["Command"] == 'EXEC "Goto" "hotline-queue,s,1"'
    answer(s, ami, "200 result=0\n")
    assert ami.last["Command"] == "ASYNCAGI BREAK"
    s.end()  # AsyncAGIEnd before the BREAK's own result
    assert done == [None] and s.left


def test_redirect_moves_channel_over_ami():
    """redirect sends one AMI Redirect (not an AGI command) and marks the session as left."""
    s, ami, _ = make()
    out = run(s.redirect("hotline-fallback", "s", 1))
    assert out == [None] and s.left
    assert ami.last == {"Action": "Redirect", "Channel": "PJSIP/anon-00000001",
                        "Context": "hotline-fallback", "Exten": "s", "Priority": "1"}
    ami.refuse = AmiActionError("Redirect", "Channel does not exist")
    assert run(s.redirect("x", "s"))[0].check(CallHungUp)
    ami.refuse = AmiConnectionLost("down")
    assert run(s.redirect("x", "s"))[0].check(AgiLinkLost)


def test_a_reading_too_long_for_one_ami_line_is_still_one_command():
    """Files beyond one AMI line are parked in channel variables over AMI and one Exec
    plays them all with the menu, so no number is cut between two commands (issue 13,
    defect 9); the AGI line stays short."""
    s, ami, _ = make()
    ami.vars = {"HOTLINE_DIGITS": "1", "READSTATUS": "OK"}
    files = [f"/var/lib/hotline/prompts/current/demo/zh/num/{i % 10}" for i in range(60)]
    out = run(s.get_data(files + ["/p/ivr/deposit-menu"], 5000, 1))
    parked = [a for a in ami.actions if a.get("Variable", "").startswith("HOTLINE_PROMPTS")]
    assert len(parked) > 1 and all(len(a["Value"]) <= 900 for a in parked)
    assert "&".join(a["Value"] for a in parked).split("&") == files + ["/p/ivr/deposit-menu"]
    refs = "&".join(f"${{HOTLINE_PROMPTS{i}}}" for i in range(1, len(parked) + 1))
    assert ami.agi()[-1]["Command"] == f'EXEC "Exec" "Read(HOTLINE_DIGITS,{refs},1,,1,)"'
    answer(s, ami, "200 result=0\n")
    assert out == [DigitsResult("1", False)]


class HeldAmi(FakeAmi):
    """Answers nothing until ``release``: shows what is written before any answer."""

    def __init__(self):
        super().__init__()
        self.held: list[tuple[Deferred, object]] = []

    def action(self, name, headers=None, variables=None, timeout=None):
        answered = super().action(name, headers, variables, timeout)
        held: Deferred = Deferred()
        self.held.append((held, answered))
        return held

    def release(self):
        held, self.held = self.held, []
        for d, answered in held:
            answered.addBoth(d.callback)


def test_setvars_ahead_of_a_read_and_its_getvars_go_out_without_waiting_for_answers():
    """The timeouts and parked prompts of a Read are written with the Read's AGI action,
    not one round trip each before it (Asterisk runs a session's actions in order), and
    the Read's two Getvars go out together: the password's result to the balance reading
    took 5-7 such round trips (issue 13, the daemon's p99). The digits are still cleared
    after they were read, and the flow still sees them."""
    s, _, _ = make()
    ami = s.ami = HeldAmi()
    ami.vars = {"HOTLINE_DIGITS": "123456", "READSTATUS": "OK"}
    files = [f"/var/lib/hotline/prompts/current/demo/zh/num/{i % 10}" for i in range(60)]
    out = run(s.get_data(files, 5000, 6, 3000))
    names = [(a["Action"], a.get("Variable")) for a in ami.actions]
    assert names[:2] == [("Setvar", "TIMEOUT(response)"), ("Setvar", "TIMEOUT(digit)")]
    assert names[-1] == ("AGI", None) and len(names) > 4
    assert all(v.startswith("HOTLINE_PROMPTS") for _, v in names[2:-1])
    ami.release()
    answer(s, ami, "200 result=0\n")
    assert [a["Variable"] for a in ami.actions[len(names):]] == ["HOTLINE_DIGITS", "READSTATUS"]
    ami.release()
    assert out == [DigitsResult("123456", False)]
    assert (ami.last["Action"], ami.last["Variable"], ami.last["Value"]) == \
        ("Setvar", "HOTLINE_DIGITS", "")


def test_a_failed_setvar_ahead_of_a_command_fails_the_flow_once():
    """A channel gone while its parked prompts are set: the flow sees one CallHungUp and
    the command's own failure is not left unhandled."""
    s, _, _ = make()
    ami = s.ami = HeldAmi()
    files = [f"/var/lib/hotline/prompts/current/demo/zh/num/{i % 10}" for i in range(40)]
    out = run(s.play(files))
    s.end()
    for held, _ in ami.held:  # Asterisk refuses every action of the gone channel
        held.errback(AmiActionError("Setvar", "Channel does not exist."))
    assert out[0].check(CallHungUp)


def test_a_long_notice_is_one_playback():
    """The same for a notice heard whole: one Exec of Playback over the parked files."""
    s, ami, _ = make()
    files = [f"/var/lib/hotline/prompts/current/demo/zh/num/{i % 10}" for i in range(40)]
    run(s.play(files))
    assert ami.agi()[-1]["Command"].startswith('EXEC "Exec" "Playback(${HOTLINE_PROMPTS1}&')
    assert len(ami.agi()) == 1


def test_hangup_during_a_playback_raises():
    """Playback returns -1 when the caller hangs up during it: the flow sees CallHungUp
    (a hang-up during "transferring" is then abandoned, issue 13 defect 8)."""
    s, ami, _ = make()
    out = run(s.play(["ivr/transferring"]))
    answer(s, ami, "200 result=-1\n")
    assert out[0].check(CallHungUp)


def test_reply_time_from_a_result_to_the_next_command_is_reported():
    """The session tells ``on_reply`` how long the daemon took from an AGI result to its
    next command on the call (the IVR latency metric); the first command, sent before any
    result, and a wait for the AMI link to come back are no reply times."""
    s, ami, clock = make()
    times: list[float] = []
    s.on_reply = times.append
    thinking: Deferred = Deferred()

    async def flow():
        await s.run("ANSWER")
        await thinking  # a core query between two commands
        await s.run("NOOP")

    out = run(flow())
    answer(s, ami, "200 result=0")
    assert times == []
    clock.advance(0.25)
    thinking.callback(None)
    assert times == [0.25] and len(ami.agi()) == 2
    answer(s, ami, "200 result=0")
    assert out == [None]
    s.suspend()
    clock.advance(3)
    s.resume()
    run(s.run("NOOP"))
    assert times == [0.25]
